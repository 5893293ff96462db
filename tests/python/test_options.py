"""Options by keyword, configuration files and the environment: the
library's table and messages, as the command-line tool sees them."""
from __future__ import annotations

import pydoc

import pytest

import harness
import tokenmgr
from tokenmgr import ConfigError, UnknownOptionError


def test_keywords_are_yaml_keys(client_factory):
    c = client_factory(bucket_soft_floor=5, bucket_recharge_target=30, redis_timeout_ms=250,
                       stall_tokens_ratio=0.5, recovery_dry_run=True,
                       recovery_exec=["/bin/true", "--flag"])
    assert c.option("bucket.soft_floor") == 5
    assert c.option("bucket_recharge_target") == 30
    assert c.option("redis.timeout_ms") == 250
    assert c.option("stall.tokens_ratio") == 0.5
    assert c.option("recovery.dry_run") is True
    assert c.option("recovery.exec") == ["/bin/true", "--flag"]
    c.sync(100, 10)
    assert c.status()["recharge_target"] == 30


def test_unknown_keyword_has_the_librarys_hint():
    with pytest.raises(UnknownOptionError) as e:
        tokenmgr.Client(False, bucket_soft_flor=3)
    assert str(e.value) == "unknown option keyword 'bucket_soft_flor' (did you mean 'bucket_soft_floor'?)"
    assert isinstance(e.value, TypeError) and isinstance(e.value, ConfigError)
    with pytest.raises(UnknownOptionError, match="^unknown option keyword 'colour'$"):
        tokenmgr.Client(False, colour="blue")


def test_values_the_library_refuses():
    with pytest.raises(ConfigError, match="bucket.soft_floor must be a whole number of tokens, not 'abc'"):
        tokenmgr.Client(False, bucket_soft_floor="abc")
    with pytest.raises(ConfigError, match="redis.timeout_ms"):
        tokenmgr.Client(False, redis_timeout_ms=0)
    with pytest.raises(ConfigError, match="max_deficit"):
        tokenmgr.Client(False, bucket_max_deficit=10, bucket_soft_floor=5)
    with pytest.raises(ConfigError, match="pool"):
        tokenmgr.Client(False, pool="no spaces")
    with pytest.raises(ConfigError, match="worker id 'a b' is invalid"):
        tokenmgr.Client(False, worker_id="a b")
    with pytest.raises(ConfigError, match="bucket.soft_floor: a dict is not a value"):
        tokenmgr.Client(False, bucket_soft_floor={})


@pytest.mark.parametrize(
    "text",
    [
        "pool: x\nbucket:\n  soft_flor: 3\n",
        "pool: x\nbucket:\n  soft_floor: twenty\n",
        "pool: [x\n",
        "pool: x\nbucket:\n  soft_floor: 60\n  recharge_target: 50\n",
    ],
)
def test_a_refused_file_says_what_the_cli_says(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        tokenmgr.Client(path)
    r = harness.cli(str(path), "config", "check", str(path), check=False)
    assert r.returncode == 78
    assert r.stderr.strip() == "tokenmgr: " + str(e.value)
    assert str(path) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: cannot open"):
        tokenmgr.Client(str(tmp_path / "nope.yaml"))


def test_file_then_environment_then_arguments(tmp_path, monkeypatch, redis):
    path = harness.write_config(str(tmp_path / "c.yaml"), redis.url, "fromfile", bucket={"soft_floor": 10})
    with tokenmgr.Client(path) as c:
        assert (c.pool, c.option("bucket.soft_floor")) == ("fromfile", 10)
    monkeypatch.setenv("TOKENMGR_BUCKET_SOFT_FLOOR", "12")
    with tokenmgr.Client(path) as c:
        assert c.option("bucket.soft_floor") == 12
    with tokenmgr.Client(path, bucket_soft_floor=14, pool="fromarg") as c:
        assert (c.pool, c.option("bucket.soft_floor")) == ("fromarg", 14)
    # $TOKENMGR_CONFIG when config= is not given; config=False reads none.
    monkeypatch.setenv("TOKENMGR_CONFIG", path)
    with tokenmgr.Client() as c:
        assert c.pool == "fromfile"
    with tokenmgr.Client(False) as c:
        assert c.pool == "keepa"
    monkeypatch.setenv("TOKENMGR_BUCKET_SOFT_FLOOR", "many")
    with pytest.raises(ConfigError, match="TOKENMGR_BUCKET_SOFT_FLOOR"):
        tokenmgr.Client(False)


def test_help_reads_well():
    text = pydoc.render_doc(tokenmgr.Client, renderer=pydoc.plaintext)
    for want in (
        "acquire(self, cost: 'int', wait: 'Union[bool, float]' = True) -> 'Grant'",
        "bucket_soft_floor (bucket.soft_floor; integer",
        "the grant that leaves the balance below this proceeds",
        "fork()",
        "heartbeat(self, phase",
    ):
        assert want in text, want
    # Every option of the library's table is documented, once.
    from tokenmgr import _options

    for d in _options.TABLE:
        assert text.count("    %s (%s;" % (d["key"].replace(".", "_"), d["key"])) == 1
    assert "Denied" in pydoc.render_doc(tokenmgr.errors, renderer=pydoc.plaintext)
