"""Where task images come from: direct reads of Label Studio's folders (never outside them),
the bounded image cache (atomic, checked, least recently used out, kept across restarts), HTTP;
and the previous training's decoded images (only new or changed ones decoded again, checked)."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from backend.decoded import DecodedImages, ImageKey
from backend.image_cache import ImageCache
from backend.images import ImageSource, load_images
from backend.media import MediaReader


def png(value: int, size: int = 8, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), value if mode == "L" else (value, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


class CountingClient:
    def __init__(self, blobs):
        self.blobs, self.calls = blobs, []

    def download(self, url):
        self.calls.append(url)
        if url not in self.blobs:
            raise OSError(f"404 for {url}")
        return self.blobs[url]


def test_cache_round_trip_survives_a_restart(tmp_path):
    cache = ImageCache(tmp_path / "c", max_bytes=10_000)
    cache.put("/data/upload/1/a.png", b"abc")
    assert cache.get("/data/upload/1/a.png") == b"abc" and cache.get("/other") is None
    assert not any(f.name.startswith(".tmp") for f in (tmp_path / "c").rglob("*"))  # no leftovers
    again = ImageCache(tmp_path / "c", max_bytes=10_000)
    assert again.get("/data/upload/1/a.png") == b"abc" and again.size_bytes == cache.size_bytes > 3


def test_a_corrupted_entry_is_dropped_and_fetched_again(tmp_path):
    cache = ImageCache(tmp_path / "c", max_bytes=10_000)
    client = CountingClient({"/a": png(10)})
    source = ImageSource(client, cache=cache)
    assert source.fetch("/a") == png(10)
    entry = next(f for f in (tmp_path / "c").rglob("*") if f.is_file())
    blob = bytearray(entry.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in the content
    entry.write_bytes(bytes(blob))
    assert source.fetch("/a") == png(10)
    assert client.calls == ["/a", "/a"] and cache.corrupt == 1
    assert source.fetch("/a") == png(10) and client.calls == ["/a", "/a"]  # cached again
    assert source.counts == {"direct": 0, "cached": 1, "downloaded": 2}


def test_eviction_removes_the_least_recently_used(tmp_path):
    cache = ImageCache(tmp_path / "c", max_bytes=400)
    for i in range(4):
        cache.put(f"/{i}", bytes([i]) * 60)  # ~98 bytes per entry with its header
        path = cache._path(f"/{i}")
        os.utime(path, ns=(i * 10**9, i * 10**9))  # written in order 0, 1, 2, 3
    cache.get("/0")  # 0 is now the most recently used
    cache.put("/4", b"x" * 60)  # over 400 bytes: evict down to 360
    assert cache.get("/1") is None and cache.get("/0") is not None and cache.get("/4") is not None
    assert cache.size_bytes <= 360 and cache.evicted >= 1


def test_a_write_interrupted_midway_leaves_no_entry(tmp_path, monkeypatch):
    cache = ImageCache(tmp_path / "c", max_bytes=10_000)

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cache.put("/a", b"abc")
    monkeypatch.undo()
    assert cache.get("/a") is None and not list((tmp_path / "c").rglob(".tmp-*"))


def test_direct_reads_of_local_files_and_uploads(tmp_path):
    root, media = tmp_path / "root", tmp_path / "media"
    (root / "mnist" / "3").mkdir(parents=True)
    (root / "mnist" / "3" / "a b.png").write_bytes(b"local")
    (media / "upload" / "1").mkdir(parents=True)
    (media / "upload" / "1" / "x.png").write_bytes(b"uploaded")
    reader = MediaReader(local_files_root=root, media_root=media)
    assert reader.read("/data/local-files/?d=mnist/3/a%20b.png") == b"local"
    assert reader.read("http://ls:8080/data/upload/1/x.png") == b"uploaded"
    assert reader.read("/data/upload/1/missing.png") is None  # falls back to HTTP
    assert MediaReader(local_files_root=root).read("/data/upload/1/x.png") is None


@pytest.mark.parametrize("url", ["/data/local-files/?d=../secret.txt", "/data/local-files/?d=/etc/passwd",
                                 "/data/local-files/?d=mnist/../../secret.txt",
                                 "/data/local-files/?d=link/secret.txt", "/data/upload/../secret.txt",
                                 "/data/upload/%2e%2e/secret.txt", "/data/local-files/?d=",
                                 "/data/local-files/?d=mnist/file-link.png",
                                 "/data/upload/1/../../secret.txt"])
@pytest.mark.parametrize("folders", [None, {}], ids=["each-path-resolved", "folders-kept"])
def test_direct_reads_never_leave_their_root(tmp_path, url, folders):
    root, media = tmp_path / "root", tmp_path / "media"
    (root / "mnist").mkdir(parents=True)
    (media / "upload" / "1").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link").symlink_to(tmp_path)
    (root / "mnist" / "file-link.png").symlink_to(tmp_path / "secret.txt")
    (media / "secret.txt").write_text("secret")
    reader = MediaReader(local_files_root=root, media_root=media)
    if folders is not None:  # the folders already resolved by earlier, harmless reads
        assert reader.read("/data/local-files/?d=mnist/missing.png", folders=folders) is None
        assert reader.read("/data/upload/1/missing.png", folders=folders) is None
    with pytest.raises(ValueError):
        reader.read(url, folders=folders)


def test_kept_folders_give_the_same_paths_as_resolving_each(tmp_path):
    root = tmp_path / "root"
    (root / "real" / "3").mkdir(parents=True)
    (root / "real" / "3" / "a.png").write_bytes(b"a")
    (root / "real" / "3" / "inside-link.png").symlink_to(root / "real" / "3" / "a.png")
    (root / "alias").symlink_to(root / "real")
    reader, folders = MediaReader(local_files_root=root), {}
    for rel in ["real/3/a.png", "alias/3/a.png", "alias/3/inside-link.png", "real/3/../3/a.png",
                "a-top-level.png", "alias/3/new.png", "alias/..", "real/3/"]:
        url = f"/data/local-files/?d={rel}"
        assert reader.path_of(url, folders=folders) == reader.path_of(url) == (root / rel).resolve()
    assert reader.read("/data/local-files/?d=alias/3/inside-link.png", folders=folders) == b"a"


def test_load_images_prefers_disk_then_cache_then_http_and_decodes_each(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.png").write_bytes(png(200))
    client = CountingClient({"/data/upload/1/b.png": png(50), "/data/upload/1/c.png": png(0, mode="RGB")})
    cache = ImageCache(tmp_path / "cache", max_bytes=10**6)
    reader = MediaReader(local_files_root=tmp_path / "root")
    urls = ["/data/local-files/?d=a.png", "/data/upload/1/b.png", "/data/upload/1/gone.png"]
    first = load_images(urls, source=ImageSource(client, media=reader, cache=cache))
    assert first.errors[:2] == [None, None] and "404" in first.errors[2]
    assert first.channels == 1 and first.x.shape == (2, 1, 28, 28)
    assert np.allclose(first.x[0], 200 / 255) and np.allclose(first.x[1], 50 / 255)
    assert first.sources == {"direct": 1, "cached": 0, "downloaded": 1}
    second = load_images(urls[:2], source=ImageSource(client, media=reader, cache=cache))
    assert second.sources == {"direct": 1, "cached": 1, "downloaded": 0}  # nothing downloaded again
    mixed = load_images(urls[:2] + ["/data/upload/1/c.png"], source=ImageSource(client, media=reader))
    assert mixed.channels == 3 and mixed.x.shape == (3, 3, 32, 32)
    assert np.allclose(mixed.x[0], 200 / 255, atol=1 / 255)  # gray repeated over three channels


def decoded_setup(tmp_path):
    (tmp_path / "root").mkdir()
    for name, value in (("a.png", 200), ("b.png", 10)):
        (tmp_path / "root" / name).write_bytes(png(value))
    client = CountingClient({"/data/upload/1/c.png": png(90), "/data/upload/1/d.png": png(0, mode="RGB")})
    reader = MediaReader(local_files_root=tmp_path / "root")
    return client, reader, DecodedImages(tmp_path / "project")


def test_a_retrain_decodes_only_new_or_changed_images_and_gets_the_same_arrays(tmp_path):
    client, reader, decoded = decoded_setup(tmp_path)
    urls = ["/data/local-files/?d=a.png", "/data/local-files/?d=b.png", "/data/upload/1/c.png"]
    first = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert first.sources == {"direct": 2, "cached": 0, "downloaded": 1, "decoded": 0}
    again = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert again.sources == {"direct": 0, "cached": 0, "downloaded": 0, "decoded": 3}
    assert np.array_equal(again.x, first.x) and again.errors == first.errors
    # b.png replaced on disk (a new size and time): read again; a new task's image: read
    (tmp_path / "root" / "b.png").write_bytes(png(77, size=9))
    os.utime(tmp_path / "root" / "b.png", ns=(1, 1))
    urls.append("/data/upload/1/e.png")  # 404: an error, not saved
    third = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert third.sources == {"direct": 1, "cached": 0, "downloaded": 0, "decoded": 2}
    assert np.allclose(third.x[1], 77 / 255) and "404" in third.errors[3]
    fresh = load_images(urls, source=ImageSource(client, media=reader))
    assert np.array_equal(third.x, fresh.x)


def test_a_color_image_joining_a_gray_set_decodes_the_saved_ones_again(tmp_path):
    client, reader, decoded = decoded_setup(tmp_path)
    urls = ["/data/local-files/?d=a.png", "/data/upload/1/c.png"]
    load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    mixed = load_images(urls + ["/data/upload/1/d.png"], source=ImageSource(client, media=reader),
                        decoded=decoded)
    assert mixed.channels == 3 and mixed.sources["decoded"] == 0
    fresh = load_images(urls + ["/data/upload/1/d.png"], source=ImageSource(client, media=reader))
    assert np.array_equal(mixed.x, fresh.x)
    again = load_images(urls + ["/data/upload/1/d.png"], source=ImageSource(client, media=reader),
                        decoded=decoded)
    assert again.sources["decoded"] == 3 and np.array_equal(again.x, fresh.x)


def test_a_damaged_or_torn_decoded_file_is_ignored_and_written_again(tmp_path):
    client, reader, decoded = decoded_setup(tmp_path)
    urls = ["/data/local-files/?d=a.png", "/data/upload/1/c.png"]
    first = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    blob = bytearray(decoded.path.read_bytes())
    blob[-1] ^= 0xFF  # one pixel flipped on disk
    decoded.path.write_bytes(bytes(blob))
    assert decoded.read() is None
    again = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert again.sources["decoded"] == 0 and np.array_equal(again.x, first.x)
    decoded.path.write_bytes(decoded.path.read_bytes()[:40])  # cut short
    assert decoded.read() is None
    load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert decoded.read() is not None and not list(decoded.path.parent.glob(".decoded-*"))
    # a new process (a restart) reads the same file
    restarted = load_images(urls, source=ImageSource(client, media=reader),
                            decoded=DecodedImages(tmp_path / "project"))
    assert restarted.sources["decoded"] == 2


def test_a_refused_path_is_never_taken_from_the_decoded_file(tmp_path):
    client, reader, decoded = decoded_setup(tmp_path)
    decoded.save([ImageKey("/data/local-files/?d=../secret.png", "", 1)], np.zeros((1, 1, 28, 28), np.float32))
    out = load_images(["/data/local-files/?d=../secret.png", "/data/local-files/?d=a.png"],
                      source=ImageSource(client, media=reader), decoded=decoded)
    assert "leaves" in out.errors[0] and out.sources["decoded"] == 0


def test_a_load_taking_every_image_from_the_decoded_file_does_not_rewrite_it(tmp_path):
    client, reader, decoded = decoded_setup(tmp_path)
    urls = ["/data/local-files/?d=a.png", "/data/upload/1/c.png"]
    load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    os.utime(decoded.path, ns=(1, 1))
    same = load_images(urls, source=ImageSource(client, media=reader), decoded=decoded)
    assert same.sources["decoded"] == 2 and decoded.path.stat().st_mtime_ns == 1
    fewer = load_images(urls[:1], source=ImageSource(client, media=reader), decoded=decoded)
    assert fewer.sources["decoded"] == 1 and decoded.path.stat().st_mtime_ns != 1
    assert [url for url, _ in decoded.read().rows] == urls[:1]  # rewritten with the one image
