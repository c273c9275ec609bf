"""Config, label config parsing, the Label Studio client (auth, pagination, SSRF guard) and store."""
from __future__ import annotations

import pytest
import responses as r

from backend.config import Config
from backend.labels import parse_label_config
from backend.ls_auth import is_jwt, same_origin
from backend.ls_client import LabelStudioClient, LabelStudioError
from backend.model import parse_project_id
from backend.store import Store
from backend.tasks import Verdict


def test_config_from_env_reads_every_setting():
    cfg = Config.from_env({"MODEL_DIR": "/data/models", "LABEL_STUDIO_URL": "http://ls:8080/",
                           "LABEL_STUDIO_API_KEY": "k", "BASIC_AUTH_USER": "u", "BASIC_AUTH_PASS": "p",
                           "LOG_LEVEL": "debug", "DETECTION_METHOD": "tracin", "TRAIN_EPOCHS": "3",
                           "VERDICT_BATCH": "7", "VERDICT_QUIET_SECONDS": "2.5"})
    assert cfg.model_dir == "/data/models" and cfg.label_studio_url == "http://ls:8080"
    assert cfg.basic_auth and cfg.log_level == "DEBUG" and cfg.detection_method == "tracin"
    assert cfg.train_epochs == 3 and cfg.verdict_batch == 7 and cfg.verdict_quiet_seconds == 2.5
    assert Config.from_env({}).detection_method == "dfaulo"


@pytest.mark.parametrize("env, message", [
    ({"DETECTION_METHOD": "magic"}, "DETECTION_METHOD"),
    ({"BASIC_AUTH_USER": "u"}, "BASIC_AUTH_PASS"),
    ({"VERDICT_BATCH": "many"}, "VERDICT_BATCH"),
    ({"VERDICT_BATCH": "0"}, "VERDICT_BATCH"),
    ({"LABEL_STUDIO_URL": "ls:8080"}, "LABEL_STUDIO_URL"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
])
def test_config_rejects_bad_values(env, message):
    with pytest.raises(ValueError, match=message):
        Config.from_env(env)


def test_overrides_reject_unknown_keys():
    with pytest.raises(ValueError, match="unknown setting"):
        Config().with_overrides({"NOPE": 1})


def test_label_config_from_captured_setup(h):
    spec = parse_label_config(h.payload("setup.json")["body"]["schema"])
    assert (spec.from_name, spec.to_name, spec.image_key, spec.choices) == ("label", "image", "image",
                                                                          ("0", "1", "2"))
    assert spec.result(2) == [{"from_name": "label", "to_name": "image", "type": "choices",
                               "value": {"choices": ["2"]}}]


@pytest.mark.parametrize("xml, message", [
    ("", "empty"),
    ("<View", "XML"),
    ("<View><Choices name='c' toName='i'><Choice value='a'/><Choice value='b'/></Choices></View>", "Image"),
    ("<View><Image name='i' value='$img'/></View>", "Choices"),
    ("<View><Image name='i' value='$img'/><Choices name='c' toName='i'><Choice value='a'/></Choices></View>",
     "two"),
])
def test_label_config_errors_say_what_is_wrong(xml, message):
    with pytest.raises(ValueError, match=message):
        parse_label_config(xml)


@pytest.mark.parametrize("raw, pid", [("1.1795607766", 1), (7, 7), ({"id": 3}, 3), ("12", 12)])
def test_project_ids(raw, pid):
    assert parse_project_id(raw) == pid


@pytest.mark.parametrize("raw", [None, "abc", {"x": 1}, 0, True, "-1.5"])
def test_bad_project_ids(raw):
    with pytest.raises(ValueError):
        parse_project_id(raw)


def test_same_origin_guard():
    base = "http://127.0.0.1:8080"
    assert same_origin("http://127.0.0.1:8080/data/upload/1/a.png", base)
    assert not same_origin("http://127.0.0.1:8081/a.png", base)
    assert not same_origin("http://169.254.169.254/latest/meta-data", base)
    assert not same_origin("file:///etc/passwd", base)
    assert not same_origin("http://user:pw@127.0.0.1:8080/a.png", base)
    assert same_origin("https://ls.example.com/a", "https://ls.example.com:443")


def test_download_joins_relative_urls_and_refuses_other_hosts(rsps, h):
    rsps.add(r.GET, f"{h.LS}/data/local-files/?d=images/b.png", body=b"PNG",
             match=[r.matchers.header_matcher({"Authorization": "Token tok"})])
    client = LabelStudioClient(h.LS, "tok")
    assert client.download("/data/local-files/?d=images/b.png") == b"PNG"
    for url in ("http://evil.example/x.png", "//evil.example/x.png", "ftp://ls.test/x"):
        with pytest.raises(ValueError, match="refusing"):
            client.download(url)


def test_download_does_not_follow_redirects_and_limits_size(rsps, h):
    rsps.add(r.GET, f"{h.LS}/data/redirect", status=302, headers={"Location": "http://evil.example/"})
    rsps.add(r.GET, f"{h.LS}/data/big", body=b"x" * 2048)
    client = LabelStudioClient(h.LS, "tok", max_image_bytes=1024)
    with pytest.raises(LabelStudioError, match="302"):
        client.download("/data/redirect")
    with pytest.raises(ValueError, match="limit"):
        client.download("/data/big")


def test_iter_tasks_pages_through_dict_and_list_shapes(rsps, h):
    pages = {1: [{"id": 1}, {"id": 2}], 2: [{"id": 3}]}
    rsps.add_callback(r.GET, f"{h.LS}/api/tasks", callback=lambda req: (
        200, {}, __import__("json").dumps({"tasks": pages[int(req.params["page"])], "total": 3})))
    client = LabelStudioClient(h.LS, "tok")
    assert [t["id"] for t in client.iter_tasks(1, page_size=2)] == [1, 2, 3]
    rsps.replace(r.GET, f"{h.LS}/api/tasks", json=[{"id": 9}])
    assert [t["id"] for t in client.iter_tasks(1, page_size=2)] == [9]


def test_api_errors_are_raised_with_status(rsps, h):
    rsps.add(r.PATCH, f"{h.LS}/api/projects/1", status=400, json={"model_version": ["bad"]})
    with pytest.raises(LabelStudioError, match="400"):
        LabelStudioClient(h.LS, "tok").set_model_version(1, "v")


def test_client_needs_url_and_key():
    with pytest.raises(ValueError):
        LabelStudioClient("ls.test", "k")
    with pytest.raises(ValueError):
        LabelStudioClient("http://ls.test", "")
    assert not is_jwt("0123456789abcdef0123456789abcdef01234567")


def test_store_verdicts_are_idempotent_and_jobs_recover(tmp_path):
    s = Store(tmp_path / "s.sqlite3")
    assert s.add_verdict(Verdict(task_id=1, annotation_id=5, updated_at="t1", label="a"))
    assert not s.add_verdict(Verdict(task_id=1, annotation_id=5, updated_at="t1", label="a"))
    assert s.add_verdict(Verdict(task_id=1, annotation_id=5, updated_at="t2", label="b"))
    assert s.latest_verdicts() == [Verdict(task_id=1, annotation_id=5, updated_at="t2", label="b")]
    assert s.pending_verdicts()[0] == 2
    job = s.start_job("train")
    s.close()
    s2 = Store(tmp_path / "s.sqlite3")
    assert s2.interrupted_jobs() == [(job, "train")]
    assert s2.interrupted_jobs() == []
    assert s2.last_job("train")["state"] == "interrupted"
