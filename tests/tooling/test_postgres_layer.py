"""The database runner's postgres layer (`components.packaging`): psycopg from uv.lock's `postgres` export, and the
RDS CA bundle at the path the functions' ETL_DATABASE_CA_BUNDLE names, downloaded when the layer is built.

The real bundle is AWS's (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), which this machine
cannot reach: the build is run here with a bundle from a local file URL (what the download step reads is the same
bytes path), and the refusal without the network is checked against an address that cannot resolve. The wheels come
from PyPI, as `make layers` installs them (about 10 s the first time, then uv's cache)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from components import packaging
from components.architectures import database
from components.settings import LambdaArchitecture

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_the_layer_puts_the_bundle_where_the_functions_look_for_it() -> None:
    assert f"/opt/{packaging.RDS_CA_BUNDLE_ENTRY}" == database.CA_BUNDLE_PATH, "Lambda unpacks layers under /opt"


def test_without_the_network_the_build_fails_and_says_what_it_could_not_read(tmp_path: Path) -> None:
    url = "https://truststore.invalid/global/global-bundle.pem"
    with pytest.raises(packaging.CaBundleDownloadError, match=f"cannot download the RDS CA bundle from {url}"):
        packaging.build_postgres_layer(LambdaArchitecture.ARM64, tmp_path, bundle_url=url)
    assert not list(tmp_path.rglob("*.zip")), "nothing is built without the bundle"


def test_an_answer_that_is_not_a_pem_bundle_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "captive-portal.html"
    page.write_text("<html>sign in to the Wi-Fi</html>")
    with pytest.raises(packaging.CaBundleDownloadError, match="did not answer with a PEM certificate bundle"):
        packaging.fetch_ca_bundle(page.as_uri())


def test_the_layer_holds_psycopg_for_the_platform_and_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_bytes(PEM)
    path = packaging.build_postgres_layer(LambdaArchitecture.ARM64, tmp_path / "out", bundle_url=bundle.as_uri())
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert archive.read(packaging.RDS_CA_BUNDLE_ENTRY) == PEM
    assert "python/psycopg/__init__.py" in names
    # The binary libpq build for Lambda's arm64 (aarch64), not the build host's platform.
    libraries = [name for name in names if name.startswith("python/psycopg_binary/") and ".so" in name]
    assert libraries and all("x86_64" not in name for name in libraries)
    assert any("aarch64" in name for name in libraries)
    assert not any(name.startswith(("python/polars", "python/boto3")) for name in names), "the main layer's"
    assert path == packaging.postgres_layer_paths(LambdaArchitecture.ARM64, tmp_path / "out")[1]
