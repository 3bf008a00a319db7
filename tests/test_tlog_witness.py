"""Witnesses (c2sp.org/tlog-witness, tlog-cosignature, tlog-policy), with a real witness process on
127.0.0.1 (`archiver witness serve`) and a real store: a consistent checkpoint is cosigned and the
cosignature travels in proofs; a forked log is refused (409 with the witness's size, then 422); an
unknown origin is 404 and an untrusted key 403; racing submissions never roll the witness back; a
verifier with a policy of one witness accepts a proof carrying its cosignature and rejects one without."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from archiver.api import Archive
from archiver.tlog.note import COSIGNATURE_V1, Verifier, count_cosigned, open_checkpoint
from archiver.tlog.proofs import verify_proof
from archiver.tlog.witness import Witness
from tests.services import free_port
from tests.test_tlog_tamper import rewrite_without

N = 4
ORIGIN = "archive.example.org/evidence"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, site) -> Path:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("witness")
    a, _ = Archive.init(tmp / "store", operator="Witness Tester")
    for k, v in (("capture.allow_private", "true"), ("log.origin", ORIGIN), ("log.witness_timeout", "5")):
        a.config.set(k, v)
    done = a.capture_batch([(f"{site.base_url}/plain?w={i}", None, None) for i in range(N)], jobs=2,
                           passphrase=lambda: None)
    assert all(r.record_id for r in done)
    assert a.log.latest() is not None  # the batch signed one at its end
    return a.root


@pytest.fixture()
def store(base: Path, tmp_path: Path) -> Archive:
    root = tmp_path / "store"
    shutil.copytree(base, root)
    return Archive.open(root)


@dataclass
class RunningWitness:
    url: str
    vkey: str
    state: Path
    proc: subprocess.Popen[bytes]

    def post(self, body: bytes) -> requests.Response:
        return requests.post(f"{self.url}/add-checkpoint", data=body, timeout=10)


def witness_cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "archiver.cli", "witness", *args], capture_output=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


@pytest.fixture()
def witness(tmp_path: Path, store: Archive) -> Iterator[RunningWitness]:
    """`archiver witness serve` in its own process, allowing the store's log key."""
    state = tmp_path / "witness"
    vkey = witness_cli("key", "--state", str(state), "--key-name", "witness.test/w1").strip()
    witness_cli("allow", "--state", str(state), store.log.vkey())
    assert (state / "witness.key").stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in vkey
    port = free_port()
    with open(tmp_path / "witness.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "archiver.cli", "witness", "serve", "--state", str(state),
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/add-checkpoint", timeout=1).status_code == 405:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "witness.log").read_text()
            time.sleep(0.1)
        yield RunningWitness(url, vkey, state, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def body(old: int, proof: list[bytes], note: bytes) -> bytes:
    return f"old {old}\n".encode() + b"".join(base64.b64encode(h) + b"\n" for h in proof) + b"\n" + note


def checkpoint(cli, a: Archive) -> dict[str, object]:  # type: ignore[no-untyped-def]
    r = cli("log", "checkpoint", "--no-stamp", "--store", str(a.root), "--json")
    assert r.code == 0 and "Traceback" not in r.err, r.out + r.err
    rep: dict[str, object] = json.loads(r.out)
    return rep


def test_a_witness_cosigns_a_consistent_checkpoint_and_a_policy_of_one_witness_needs_it(
        store: Archive, witness: RunningWitness, cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rid = store.list()[0].record_id
    bare = tmp_path / "bare.proof"
    assert cli("log", "prove", rid, "-o", str(bare), "--store", str(store.root)).code == 0
    assert cli("log", "witness", "add", witness.url, witness.vkey, "--store", str(store.root)).code == 0
    first = store.log.latest()
    assert first is not None
    rep = checkpoint(cli, store)  # unchanged since the batch: the witness that lacks it gets it (old 0)
    [w] = rep["witnesses"]  # type: ignore[misc]
    assert (w["outcome"], w["status"], w["old_size"], w["size"]) == ("cosigned", 200, 0, first.size), w
    store.capture(site.base_url + "/plain?after", passphrase=lambda: None, stamp=False)
    with store.catalog.db() as d, d.tx():  # the log forgot what it cosigned: the witness's 409 tells it
        d.run("UPDATE tlog_witnesses SET size=0")
    rep = checkpoint(cli, store)  # a new checkpoint: old 0 → 409 "N" → again from N with a consistency proof
    [w] = rep["witnesses"]  # type: ignore[misc]
    assert rep["new"] is True and w["outcome"] == "cosigned" and w["old_size"] == first.size, w
    latest = store.log.latest()
    assert latest is not None and latest.size > first.size
    wv = Verifier.from_vkey(witness.vkey)
    assert wv.sig_type == COSIGNATURE_V1
    signed = open_checkpoint(latest.note, store.log.verifier(), [wv])
    assert count_cosigned(signed) == 1  # the witness's Ed25519 cosignature/v1 verifies with its vkey
    assert (store.root / "log" / "checkpoint").read_bytes() == latest.note
    # the next `log prove` carries it
    cosigned = tmp_path / "cosigned.proof"
    assert cli("log", "prove", rid, "-o", str(cosigned), "--store", str(store.root)).code == 0
    assert verify_proof(cosigned.read_bytes(), store.log.vkey(), witnesses=[wv], min_cosignatures=1).cosignatures == 1
    # a verifier with a policy of one witness (c2sp.org/tlog-policy) accepts it and rejects the bare proof
    policy = tmp_path / "policy.txt"
    policy.write_text(f"# one witness\nlog {store.log.vkey()}\n\twitness  w1 {witness.vkey} {witness.url}\n"
                      "quorum w1\n")
    ok = cli("log", "verify-proof", str(cosigned), "--policy", str(policy), "--json")
    assert ok.code == 0 and json.loads(ok.out)["cosigned_by"] == ["w1"], ok.out + ok.err
    no = cli("log", "verify-proof", str(bare), "--policy", str(policy), "--json")
    assert no.code == 1 and "quorum" in json.loads(no.out)["reason"], no.out + no.err
    # without a policy the bare proof is still a valid inclusion proof: the policy is what refused it
    assert cli("log", "verify-proof", str(bare), "--vkey", store.log.vkey()).code == 0
    # log.policy is the default for a store's verifier
    store.config.set("log.policy", str(policy))
    assert cli("log", "verify-proof", str(bare), "--store", str(store.root)).code == 1
    assert cli("log", "verify-proof", str(cosigned), "--store", str(store.root)).code == 0


def test_a_forked_log_is_refused_409_then_422(store: Archive, witness: RunningWitness, cli, site) -> None:  # type: ignore[no-untyped-def]
    assert cli("log", "witness", "add", witness.url, witness.vkey, "--store", str(store.root)).code == 0
    seen = store.log.latest()
    assert seen is not None and checkpoint(cli, store)["witnesses"][0]["outcome"] == "cosigned"  # type: ignore[index]
    # the operator removes a record from the log and signs again at the same size: another root
    rewrite_without(store, store.log.leaves_of(store.list()[1].record_id)[0][0])
    while store.log.size() < seen.size:
        store.capture(site.base_url + f"/plain?fill={store.log.size()}", passphrase=lambda: None, stamp=False)
    rep = checkpoint(cli, store)
    fork = store.log.latest()
    assert fork is not None
    assert (fork.size, rep["new"]) == (seen.size, True) and fork.root != seen.root  # same size, other root
    [w] = rep["witnesses"]  # type: ignore[misc]
    assert (w["outcome"], w["status"], w["old_size"]) == ("refused", 422, seen.size), w  # the checkpoint stands
    # the protocol itself, request by request
    r = witness.post(body(0, [], fork.note))  # wrong old size: 409 and the size the witness holds
    assert r.status_code == 409 and r.headers["content-type"] == "text/x.tlog.size" and r.text == f"{seen.size}\n"
    r = witness.post(body(fork.size + 1, [], fork.note))  # old larger than the checkpoint: 400
    assert r.status_code == 400
    store.capture(site.base_url + "/plain?grow", passphrase=lambda: None, stamp=False)
    rep = checkpoint(cli, store)  # a larger checkpoint with a consistency proof from the forked tree: 422
    [w] = rep["witnesses"]  # type: ignore[misc]
    assert (w["outcome"], w["status"], w["old_size"]) == ("refused", 422, seen.size), w
    grown = store.log.latest()
    assert grown is not None and grown.size > seen.size
    assert count_cosigned(open_checkpoint(grown.note, store.log.verifier(), [Verifier.from_vkey(witness.vkey)])) == 0
    r = witness.post(body(seen.size, store.log.consistency_proof(seen.size, grown.size), grown.note))
    assert r.status_code == 422
    r = witness.post(body(seen.size, [], grown.note))  # no proof at all
    assert r.status_code == 422
    # the witness still holds the first tree, and kept the log-signed refusals as evidence of the fork
    state = Witness(witness.state)
    assert [x.size for x in state.logs()] == [seen.size]
    assert len([e for e in state.evidence(ORIGIN) if e[1] == 422]) >= 3
    # the human report names the refusal, never a traceback
    store.capture(site.base_url + "/plain?again", passphrase=lambda: None, stamp=False)
    out = cli("log", "checkpoint", "--no-stamp", "--store", str(store.root))
    assert out.code == 0 and "refused" in out.out and "422" in out.out and "Traceback" not in out.err, out.out


def test_unknown_origin_is_404_and_an_untrusted_key_403(store: Archive, witness: RunningWitness) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.tlog.note import Checkpoint, NoteSigner, sign_note

    latest = store.log.latest()
    assert latest is not None
    root = latest.root
    stranger = NoteSigner("elsewhere.example/log", Ed25519PrivateKey.generate())
    r = witness.post(body(0, [], sign_note(Checkpoint("elsewhere.example/log", latest.size, root).text(), stranger)))
    assert r.status_code == 404
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())  # the log's origin, another key
    r = witness.post(body(0, [], sign_note(Checkpoint(ORIGIN, latest.size, root).text(), impostor)))
    assert r.status_code == 403
    text = latest.note.decode()
    sig_line = text.rstrip("\n").rsplit("\n", 1)[1]
    raw = bytearray(base64.b64decode(sig_line.rsplit(" ", 1)[1]))
    raw[-1] ^= 1  # the trusted key's name and ID, a signature that does not verify
    bad = text.replace(sig_line, sig_line.rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(raw)).decode())
    assert witness.post(body(0, [], bad.encode())).status_code == 403
    # malformed requests: 400
    assert witness.post(latest.note).status_code == 400  # no old line
    assert witness.post(b"old 01\n\n" + latest.note).status_code == 400  # a leading zero
    assert witness.post(body(1, [b"\0" * 32] * 64, latest.note)).status_code == 400  # more than 63 proof lines
    assert witness.post(body(0, [], latest.note)).status_code == 200  # the genuine one is cosigned
    assert requests.get(f"{witness.url}/add-checkpoint", timeout=10).status_code == 405


def test_racing_submissions_never_roll_the_witness_back(store: Archive, witness: RunningWitness, site) -> None:  # type: ignore[no-untyped-def]
    """Eight submitters race six checkpoints (each from old 0, learning the witness's size from 409s)
    while a monitor reads the witness's checkpoint. Every answer reveals a size the witness held: a 200
    for S (committed before it answered), a 409's body, the monitor's checkpoint. A witness that never
    rolls back never reveals, to a request sent after an answer revealing S, a size below S."""
    for i in range(5):
        store.capture(site.base_url + f"/plain?race={i}", passphrase=lambda: None, stamp=False)
        store.log.checkpoint(stamp=False)
    cps = {c.size: c.note for c in store.log.checkpoints()}
    sizes = sorted(cps)
    proofs = {(o, n): store.log.consistency_proof(o, n) for o in sizes for n in sizes if o < n}
    seen: list[tuple[float, float, int]] = []  # (request sent, answer received, size the witness held)
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(9)
    done = threading.Event()
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()

    def submitter(seed: int) -> None:
        rnd = random.Random(seed)
        order = sizes[:]
        rnd.shuffle(order)
        session = requests.Session()
        go.wait(timeout=30)
        for size in order:
            old = 0
            for _ in range(10):
                sent = time.monotonic()
                r = session.post(f"{witness.url}/add-checkpoint", timeout=10,
                                 data=body(old, proofs.get((old, size), []), cps[size]))
                if r.status_code not in (200, 409):
                    errors.append(f"{size} from {old}: {r.status_code} {r.text}")
                    break
                held = size if r.status_code == 200 else int(r.text)
                with lock:
                    seen.append((sent, time.monotonic(), held))
                if r.status_code == 200 or held > size:
                    break  # cosigned, or the witness is past this one (correct: nothing to do)
                old = held

    def monitor() -> None:
        session = requests.Session()
        go.wait(timeout=30)
        while not done.is_set():
            sent = time.monotonic()
            r = session.get(f"{witness.url}/{origin_hash}/checkpoint", timeout=10)
            if r.status_code == 200:
                held = open_checkpoint(r.content, store.log.verifier()).checkpoint.size
                with lock:
                    seen.append((sent, time.monotonic(), held))

    threads = [threading.Thread(target=submitter, args=(s,), daemon=True) for s in range(8)]
    watcher = threading.Thread(target=monitor, daemon=True)
    for t in (*threads, watcher):
        t.start()
    for t in threads:
        t.join(timeout=45)
    done.set()
    watcher.join(timeout=15)
    assert not any(t.is_alive() for t in (*threads, watcher)), "the submitters did not finish in time"
    assert errors == []
    rollbacks = [(a, b) for a in seen for b in seen if b[0] > a[1] and b[2] < a[2]]
    assert rollbacks == [], f"the witness went back from {rollbacks[0][0][2]} to {rollbacks[0][1][2]}"
    # what the witness holds now is the largest tree
    [held] = Witness(witness.state).logs()
    assert held.size == max(sizes)
    r = requests.get(f"{witness.url}/{origin_hash}/checkpoint", timeout=10)
    assert r.status_code == 200 and open_checkpoint(r.content, store.log.verifier()).checkpoint.size == max(sizes)


def test_a_witness_that_is_down_does_not_stop_a_checkpoint(store: Archive, cli, site) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    vkey = Verifier.of("down.example/w", Ed25519PrivateKey.generate().public_key(), COSIGNATURE_V1).vkey()
    assert cli("log", "witness", "add", f"http://127.0.0.1:{free_port()}", vkey, "--store", str(store.root)).code == 0
    store.capture(site.base_url + "/plain?down", passphrase=lambda: None, stamp=False)
    rep = checkpoint(cli, store)
    [w] = rep["witnesses"]  # type: ignore[misc]
    assert rep["new"] is True and w["outcome"] == "unreachable", w
    listed = json.loads(cli("log", "witness", "list", "--store", str(store.root), "--json").out)
    assert [x["name"] for x in listed] == ["down.example/w"]
    assert cli("log", "witness", "remove", "down.example/w", "--store", str(store.root)).code == 0
    assert checkpoint(cli, store)["witnesses"] == []


def test_a_policy_file_is_parsed_as_the_spec_says() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.errors import UsageError
    from archiver.tlog import policy

    def wkey(name: str) -> Verifier:
        return Verifier.of(name, Ed25519PrivateKey.generate().public_key(), COSIGNATURE_V1)

    log = Verifier.of(ORIGIN, Ed25519PrivateKey.generate().public_key())
    x1, x2, x3, y1 = wkey("x.example/1"), wkey("x.example/2"), wkey("x.example/3"), wkey("y.example/1")
    p = policy.parse(f"""# two organisations
log {log.vkey()}
witness X1 {x1.vkey()}
witness X2\t{x2.vkey()} https://x2.example
witness X3 {x3.vkey()}
group X 2 X1 X2 X3
witness Y1 {y1.vkey()}
group XY all X Y1
quorum XY
""".encode())
    assert p.logs == (log,) and not p.satisfied({x1, x2}) and not p.satisfied({x1, y1})
    assert p.satisfied({x1, x3, y1}) and p.satisfied({x1, x2, x3, y1})
    assert policy.parse(b"quorum none\n").satisfied(set())
    for bad in (f"witness A {x1.vkey()}\n",  # no quorum
                f"witness A {x1.vkey()}\nquorum B\n",  # undefined
                f"group G any A\nwitness A {x1.vkey()}\nquorum G\n",  # used before defined
                f"witness A {x1.vkey()}\nwitness B {x1.vkey()}\nquorum A\n",  # duplicate key
                f"witness A {x1.vkey()}\ngroup G 2 A\nquorum G\n",  # k > n
                f"witness A {x1.vkey()}\ngroup G any A A\nquorum G\n",  # a member twice
                f"witness A {x1.vkey()}\ngroup G any none\nquorum G\n",  # none as a member
                f"witness A {log.vkey()}\nquorum A\n",  # a log key as a witness
                f"witness A {x1.vkey()}\nquorum A\nquorum A\n",  # two quorums
                "quorum none\x0b\n"):  # a control character
        with pytest.raises(UsageError):
            policy.parse(bad.encode())


def test_go_sumdb_still_opens_a_cosigned_checkpoint_and_proof(store: Archive, witness: RunningWitness, cli,
                                                              tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Go's sumdb/note knows no 0x04 key: the cosignature lines must be ignored as unknown, never break
    the log's own signature, the tiles or a proof for a third party using Go."""
    from tests.test_tlog_verifiers import build_tlogcheck, run_go

    binary = build_tlogcheck(tmp_path)
    assert cli("log", "witness", "add", witness.url, witness.vkey, "--store", str(store.root)).code == 0
    assert checkpoint(cli, store)["witnesses"][0]["outcome"] == "cosigned"  # type: ignore[index]
    proof = tmp_path / "cosigned.proof"
    assert cli("log", "prove", store.list()[2].record_id, "-o", str(proof), "--store", str(store.root)).code == 0
    assert "witness.test/w1" in (store.root / "log" / "checkpoint").read_text()
    assert "witness.test/w1" in proof.read_text()
    proc = run_go(binary, "-dir", str(store.root / "log"), "-vkey", store.log.vkey(), "-proof", str(proof))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK checkpoint {ORIGIN} size {store.log.size()}" in proc.stdout
