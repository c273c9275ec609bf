"""scripts/import_folder.py against a faked Label Studio HTTP API (fast, no server)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.labels import label_config, parse_label_config
from backend.ls_auth import is_jwt
from backend.ls_client import LabelStudioClient, LabelStudioError
from scripts import import_folder as imp
from scripts import ls_import, ls_project
from scripts.fake_label_studio import TOKEN

PAT = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"


def make_folder(root: Path, classes: dict[str, int], *, mode: str = "L", size: int = 28,
                seed: int = 0, train: bool = True) -> Path:
    """``root/train/<class>/<i>.png`` with random images: gray MNIST-like or color CIFAR-like."""
    rng = np.random.default_rng(seed)
    base = root / "train" if train else root
    base.mkdir(parents=True, exist_ok=True)
    for name, n in classes.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(base / name / f"{i:04d}.png")
    return root


def run(folder, fake, **kwargs):
    kwargs.setdefault("api_key", TOKEN)
    return imp.run_import(folder, url=fake.url, show_progress=False, echo=lambda s: None, **kwargs)


def choices_of(task):
    return task["annotations"][0]["result"][0]["value"]["choices"]


def test_upload_creates_project_and_annotated_tasks(tmp_path, fake):
    folder = make_folder(tmp_path / "mnist", {"3": 5, "1": 4, "10": 3})
    (folder / "train" / "1" / "readme.txt").write_text("not an image")
    (folder / "train" / "3" / "broken.png").write_bytes(b"not a png")
    s = run(folder, fake, title="digits", batch=4)

    assert s.created_project and s.found == 12 and s.skipped == 2 and s.imported == 12
    project = fake.projects[s.project_id]
    assert parse_label_config(project["label_config"]).choices == ("1", "10", "3")
    tasks = fake.project_tasks(s.project_id)
    assert len(tasks) == 12
    for t in tasks:
        cls = t["data"]["path"].split("/")[1]
        assert t["data"]["path"].startswith("train/") and choices_of(t) == [cls]
        assert t["data"]["image"].startswith(f"/data/upload/{s.project_id}/")
        res = t["annotations"][0]["result"][0]
        assert (res["from_name"], res["to_name"], res["type"]) == ("label", "image", "choices")
    # batches of 4: 3 uploads and 3 JSON imports
    uploads = [c for c in fake.calls_to("POST", f"/api/projects/{s.project_id}/import")
               if c.query == {"commit_to_project": "false"}]
    assert len(fake.calls_to("POST", f"/api/projects/{s.project_id}/import")) == 6 and len(uploads) == 3
    # the uploaded bytes are what the tasks point at
    task = next(t for t in tasks if t["data"]["path"] == "train/10/0000.png")
    assert fake.images[task["data"]["image"]] == (folder / "train" / "10" / "0000.png").read_bytes()
    assert s.project_url == f"{fake.url}/projects/{s.project_id}/data?tab={s.view_id}"


def test_second_run_imports_nothing_and_partial_run_resumes(tmp_path, fake):
    folder = make_folder(tmp_path / "mnist", {"a": 6, "b": 6})
    first = run(folder, fake, batch=5)
    again = run(folder, fake, batch=5)
    assert (first.imported, again.imported, again.already_present) == (12, 0, 12)
    assert not again.created_project and again.project_id == first.project_id
    # an interrupted run: drop the last 5 tasks, then run again
    fake.delete_tasks([t["id"] for t in fake.project_tasks(first.project_id)[-5:]])
    resumed = run(folder, fake, batch=5)
    paths = [t["data"]["path"] for t in fake.project_tasks(first.project_id)]
    assert resumed.imported == 5 and len(paths) == len(set(paths)) == 12


def test_reads_existing_tasks_across_pages(tmp_path, fake, monkeypatch):
    folder = make_folder(tmp_path / "mnist", {"a": 7, "b": 6})
    first = run(folder, fake)
    fake.calls.clear()
    monkeypatch.setattr(imp, "existing_paths",
                        lambda ls, pid: ls_import.existing_paths(ls, pid, page_size=5))
    again = run(folder, fake)
    reads = fake.calls_to("GET", "/api/tasks")
    assert again.imported == 0 and [c.query["page"] for c in reads] == ["1", "2", "3"]
    assert all(c.query["include"] == "id,data" and "fields" not in c.query for c in reads)
    assert len(fake.project_tasks(first.project_id)) == 13


def test_color_folder_with_local_storage(tmp_path, fake):
    root = tmp_path / "docroot"
    folder = make_folder(root / "cifar", {"airplane": 3, "cat": 4, "ship": 2}, mode="RGB", size=32)
    s = run(folder, fake, storage="local", document_root=root)
    assert s.imported == 9
    assert len(fake.storages) == 1 and fake.storages[0]["path"] == str(folder.resolve())
    for t in fake.project_tasks(s.project_id):
        assert t["data"]["image"] == "/data/local-files/?d=cifar/" + t["data"]["path"]
        assert choices_of(t)[0] in {"airplane", "cat", "ship"}
    assert parse_label_config(fake.projects[s.project_id]["label_config"]).choices == (
        "airplane", "cat", "ship")
    # the storage is registered once and never synced
    run(folder, fake, storage="local", document_root=root)
    assert len(fake.storages) == 1
    assert not [c for c in fake.calls if c.path.endswith("/sync")]


def test_local_storage_needs_a_document_root_above_the_folder(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("LOCAL_FILES_DOCUMENT_ROOT", raising=False)
    folder = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    with pytest.raises(ValueError, match="needs --document-root"):
        run(folder, fake, storage="local")
    with pytest.raises(ValueError, match="not inside the document root"):
        run(folder, fake, storage="local", document_root=tmp_path / "elsewhere")


def test_existing_project_with_other_classes_is_refused(tmp_path, fake, capsys):
    folder = make_folder(tmp_path / "mnist", {"a": 2, "b": 2})
    run(folder, fake, title="p")
    other = make_folder(tmp_path / "other", {"a": 2, "zebra": 2})
    rc = imp.main([str(other), "--url", fake.url, "--api-key", TOKEN, "--title", "p"])
    err = capsys.readouterr().err
    assert rc == 2 and "lacks the choices ['zebra']" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_existing_project_with_a_different_image_key_is_reused(tmp_path, fake):
    folder = make_folder(tmp_path / "mnist", {"a": 2, "b": 2})
    fake.create_project("mine", (
        '<View><Image name="img" value="$picture"/><Choices name="cls" toName="img">'
        '<Choice value="a"/><Choice value="b"/><Choice value="unsure"/></Choices></View>'),
        project_id=99)
    s = run(folder, fake, title="mine")
    assert s.project_id == 99 and not s.created_project
    t = fake.project_tasks(99)[0]
    assert "picture" in t["data"]
    res = t["annotations"][0]["result"][0]
    assert (res["from_name"], res["to_name"]) == ("cls", "img")


@pytest.mark.parametrize("classes, message", [
    ({}, "at least 2"),
    ({"only": 3}, "at least 2"),
])
def test_bad_folders(tmp_path, fake, capsys, classes, message):
    folder = make_folder(tmp_path / "x", classes)
    rc = imp.main([str(folder), "--url", fake.url, "--api-key", TOKEN])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_folder_without_images_and_missing_folder(tmp_path, fake, capsys):
    for name in ("a", "b"):
        (tmp_path / "x" / name).mkdir(parents=True)
        (tmp_path / "x" / name / "notes.txt").write_text("hello")
    assert imp.main([str(tmp_path / "x"), "--url", fake.url, "--api-key", TOKEN]) == 2
    assert "no image files" in capsys.readouterr().err
    assert imp.main([str(tmp_path / "nope"), "--url", fake.url, "--api-key", TOKEN]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not fake.projects


def test_wrong_key_wrong_url_and_not_label_studio(tmp_path, fake, capsys):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    assert imp.main([str(folder), "--url", fake.url, "--api-key", "wrong"]) == 2
    err = capsys.readouterr().err
    assert "rejected the API key" in err and len(err.strip().splitlines()) == 1
    # responses refuses unregistered hosts with a ConnectionError, like a closed port
    assert imp.main([str(folder), "--url", "http://nothing.test:1", "--api-key", TOKEN]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Label Studio at http://nothing.test:1" in err and "Traceback" not in err
    assert imp.main([str(folder), "--url", "localhost:8080", "--api-key", TOKEN]) == 2
    assert "must start with http" in capsys.readouterr().err
    assert imp.main([str(folder), "--url", fake.url, "--api-key", ""]) == 2
    assert "API key is required" in capsys.readouterr().err


def test_personal_access_token_is_exchanged_and_renewed(tmp_path, fake):
    fake.refresh_token = PAT
    folder = make_folder(tmp_path / "m", {"a": 3, "b": 3})
    client = LabelStudioClient(fake.url, PAT)
    s = run(folder, fake, api_key=PAT, batch=2, ls=client)
    assert s.imported == 6 and fake.access_tokens == ["access-1"]
    assert client.auth_header() == {"Authorization": "Bearer access-1"}
    fake.expire_next_access = True  # the access token expires: one 401, then a new exchange
    make_folder(tmp_path / "m", {"c": 1}, seed=1)
    fake.projects[s.project_id]["label_config"] = label_config(["a", "b", "c"])
    s2 = run(folder, fake, api_key=PAT, ls=client)
    assert s2.imported == 1 and fake.access_tokens == ["access-2"]
    assert client.auth_header() == {"Authorization": "Bearer access-2"}


def test_wrong_personal_access_token(tmp_path, fake, capsys):
    fake.refresh_token = PAT
    folder = make_folder(tmp_path / "m", {"a": 1, "b": 1})
    bad = PAT[:-3] + "xyz"
    assert imp.main([str(folder), "--url", fake.url, "--api-key", bad]) == 2
    assert "rejected the personal access token" in capsys.readouterr().err


def test_connects_backend_once_checks_webhook_and_trains(tmp_path, fake):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    s = run(folder, fake, ml_backend="http://backend.test:9090/")
    assert s.training_started and fake.trained == [s.ml_backend_id] and s.warnings == []
    assert fake.ml[0]["url"] == "http://backend.test:9090"
    s2 = run(folder, fake, ml_backend="http://backend.test:9090")
    assert len(fake.ml) == 1 and s2.ml_backend_id == s.ml_backend_id
    assert fake.trained == [s.ml_backend_id] * 2
    assert not fake.calls_to("POST", "/api/webhooks")  # the script never adds a webhook
    # a duplicate webhook (made by hand) is reported, not "fixed" by adding or deleting
    fake.webhooks.append(dict(fake.webhooks[0], id=1000))
    s3 = run(folder, fake, ml_backend="http://backend.test:9090")
    assert len(s3.warnings) == 1 and "2 webhooks" in s3.warnings[0]
    assert len(fake.webhooks) == 2


def test_backend_slow_on_first_setup_is_retried(tmp_path, fake):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    s = imp.run_import(folder, url=fake.url, api_key=TOKEN, show_progress=False, echo=lambda m: None)
    fake.setup_timeouts = 2
    ml_id, warnings = ls_project.connect_ml_backend(LabelStudioClient(fake.url, TOKEN), s.project_id,
                                                    "http://backend.test:9090", retry_wait=0)
    assert fake.setup_timeouts == 0 and len(fake.ml) == 1 and warnings == []
    fake.setup_timeouts = 3
    with pytest.raises(LabelStudioError, match="Read timed out"):
        ls_project.connect_ml_backend(LabelStudioClient(fake.url, TOKEN), s.project_id,
                                      "http://other.test:9090", retry_wait=0)


def test_missing_webhook_is_reported(tmp_path, fake):
    fake.create_webhook = False
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    s = run(folder, fake, ml_backend="http://backend.test:9090", train=False)
    assert not s.training_started and fake.trained == []
    assert len(s.warnings) == 1 and "no project webhook" in s.warnings[0]


def test_unreachable_backend_is_one_line_without_html(tmp_path, fake, capsys):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    rc = imp.main([str(folder), "--url", fake.url, "--api-key", TOKEN,
                   "--ml-backend", "http://unreachable.test:1"])
    err = capsys.readouterr().err
    assert rc == 2 and "health check failed" in err and "<a" not in err
    assert len(err.strip().splitlines()) == 1


def test_fewer_tasks_created_than_sent_is_an_error(tmp_path, fake):
    fake.drop_tasks = 1
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    with pytest.raises(LabelStudioError, match="created 3 of 4 tasks"):
        run(folder, fake)


def test_label_config_round_trip_and_escaping():
    spec = parse_label_config(label_config(["a&b", 'say "x"', "c"]))
    assert spec.choices == ("a&b", 'say "x"', "c")
    assert (spec.image_key, spec.to_name, spec.from_name) == ("image", "image", "label")
    with pytest.raises(ValueError, match="no <Image"):
        parse_label_config('<View><Text name="t" value="$text"/></View>')
    with pytest.raises(ValueError, match="not valid XML"):
        parse_label_config("<View>")
    for bad, message in ((["a"], "at least two"), (["a", "b", "a"], r"repeated choices \['a'\]"),
                         (["a", ""], "non-empty")):
        with pytest.raises(ValueError, match=message):
            label_config(bad)


def test_bad_batch_and_storage(tmp_path, fake):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    with pytest.raises(ValueError, match="--batch must be at least 1"):
        run(folder, fake, batch=0)
    with pytest.raises(ValueError, match="--storage must be one of"):
        run(folder, fake, storage="s3")


def test_upload_refuses_oversized_batches(tmp_path, fake):
    items = [ls_import.ImageItem(file=tmp_path / f"{i}.png", rel=f"{i}.png", label="a")
             for i in range(101)]
    with pytest.raises(ValueError, match="at most 100"):
        ls_import.upload_files(None, 1, items)


def test_token_kinds():
    assert is_jwt(PAT)
    assert not is_jwt(TOKEN)
    assert not is_jwt("a.b.c")


def test_hidden_files_and_folders_are_not_part_of_the_folder(tmp_path, fake):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    make_folder(tmp_path / "m" / "train" / ".cache", {"a": 2})       # a hidden class folder
    make_folder(tmp_path / "m" / "train" / "a", {".thumbs": 3})      # a hidden sub-folder
    (folder / "train" / "b" / "._0000.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    s = run(folder, fake)
    assert (s.found, s.skipped, s.imported) == (4, 0, 4)
    paths = sorted(t["data"]["path"] for t in fake.project_tasks(s.project_id))
    assert paths == ["train/a/0000.png", "train/a/0001.png", "train/b/0000.png", "train/b/0001.png"]
    assert parse_label_config(fake.projects[s.project_id]["label_config"]).choices == ("a", "b")


def test_existing_project_with_aliases_gets_the_alias_in_annotations(tmp_path, fake):
    folder = make_folder(tmp_path / "m", {"cat": 2, "dog": 2})
    fake.create_project("pets", (
        '<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
        '<Choice value="Cat" alias="cat"/><Choice value="Dog" alias="dog"/></Choices></View>'))
    s = run(folder, fake, title="pets")
    assert not s.created_project and s.imported == 4
    assert sorted(choices_of(t)[0] for t in fake.project_tasks(s.project_id)) == ["cat", "cat", "dog", "dog"]


def test_existing_project_with_a_repeated_choice_is_refused(tmp_path, fake, capsys):
    folder = make_folder(tmp_path / "m", {"a": 2, "b": 2})
    fake.create_project("twice", (
        '<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
        '<Choice value="a"/><Choice value="b"/><Choice value="a"/></Choices></View>'))
    rc = imp.main([str(folder), "--url", fake.url, "--api-key", TOKEN, "--title", "twice"])
    err = capsys.readouterr().err
    assert rc == 2 and "repeated choices ['a']" in err and len(err.strip().splitlines()) == 1
    assert not fake.project_tasks(1)


# -- what the reviewer gets: the review tab, the confirm control, hotkeys, the reason box --------------
def test_import_makes_the_review_tab_once(tmp_path, fake):
    """The project opens on a tab with Prediction score shown and highest first; a second run
    reuses it."""
    folder = make_folder(tmp_path / "d", {"0": 2, "1": 2})
    s = run(folder, fake)
    assert len(fake.views) == 1
    view = fake.views[0]
    assert s.view_id == view["id"] and s.project_url.endswith(f"/projects/{s.project_id}/data?tab={view['id']}")
    data = view["data"]
    assert data["title"] == ls_project.REVIEW_VIEW_TITLE
    assert data["ordering"] == ["-tasks:predictions_score"]
    hidden = data["hiddenColumns"]
    assert "tasks:predictions_score" not in hidden["explore"] + hidden["labeling"]
    # Label Studio's own defaults otherwise: hidden stays hidden, shown stays shown
    assert "tasks:created_at" in hidden["explore"] and "tasks:data.path" in hidden["labeling"]
    assert "tasks:total_annotations" not in hidden["explore"] and "tasks:data.image" not in hidden["explore"]
    assert run(folder, fake).view_id == view["id"] and len(fake.views) == 1


def test_label_config_has_digit_hotkeys_a_confirm_control_and_a_reason_box():
    from xml.etree import ElementTree

    from backend.labels import CONFIRM_CHOICE, CONFIRM_HOTKEY, CONFIRM_NAME, REASON_NAME

    root = ElementTree.fromstring(label_config(["0", "1", "10", "cat"]))
    label, review = root.findall("Choices")
    keys = {c.get("value"): c.get("hotkey") for c in label}
    assert keys == {"0": "0", "1": "1", "10": None, "cat": None}  # Label Studio numbers the rest
    assert review.get("name") == CONFIRM_NAME and review.get("choice") == "multiple"
    assert [(c.get("value"), c.get("hotkey")) for c in review] == [(CONFIRM_CHOICE, CONFIRM_HOTKEY)]
    assert CONFIRM_HOTKEY not in keys.values()
    spec = parse_label_config(label_config(["0", "1"]))
    assert (spec.from_name, spec.choices, spec.reason_name) == ("label", ("0", "1"), REASON_NAME)
    bare = parse_label_config(label_config(["0", "1"], confirm=False, reason=False))
    assert bare.reason_name is None and bare.reason_result("why") == []
    assert parse_label_config(label_config(["a", "b"], reason=False)).choices == ("a", "b")
