"""Storage and CUBE flags (shared by pfstorage, px-push, px-register and the chains) -> settings."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from pypx.chris.config import (
    DEFAULT_CONTAINER,
    CubeSettings,
    StorageSettings,
    cube_settings,
    storage_settings,
)
from pypx.store.layout import Basemount


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("storage (flags override the storage.json entry)")
    group.add_argument("--storage", "--swift", dest="storage_key", metavar="KEY",
                       help="entry in <BASEMOUNT>/services/storage.json or swift.json (or $PYPX_STORAGE)")
    group.add_argument("--storeBaseLocation", "--store-path", dest="storepath", metavar="DIR",
                       help="use a folder as the storage: objects go to DIR/<object name>")
    group.add_argument("--swiftIP", dest="swift_ip", metavar="HOST", help="Swift proxy address")
    group.add_argument("--swiftPort", dest="swift_port", metavar="PORT", help="Swift proxy port (443: https)")
    group.add_argument("--swiftLogin", dest="swift_login", metavar="ACCOUNT:USER", help="Swift user")
    group.add_argument("--swiftKey", dest="swift_key", metavar="KEY", default=None,
                       help="Swift key (prefer $PYPX_SWIFT_KEY or the entry: flags show in `ps`)")
    group.add_argument("--swiftAuthURL", dest="swift_auth_url", metavar="URL",
                       help="full auth URL, e.g. https://host/auth/v1.0 or https://keystone/v3")
    group.add_argument("--swiftContainer", dest="swift_container", metavar="NAME",
                       help=f"container (default {DEFAULT_CONTAINER})")
    group.add_argument("--workers", dest="storage_workers", type=int, metavar="N",
                       help="parallel uploads (default 4)")


def storage_settings_from_args(args: argparse.Namespace, base: Basemount,
                               environ: Mapping[str, str] | None = None) -> StorageSettings:
    """Storage settings from the flags of `add_storage_options` (`environ`: the CLI's Env.environ)."""
    environ = os.environ if environ is None else environ
    overrides = {
        "storepath": getattr(args, "storepath", None),
        "ip": getattr(args, "swift_ip", None),
        "port": getattr(args, "swift_port", None),
        "login": getattr(args, "swift_login", None),
        "key": getattr(args, "swift_key", None) or environ.get("PYPX_SWIFT_KEY"),
        "auth_url": getattr(args, "swift_auth_url", None),
        "container": getattr(args, "swift_container", None),
        "workers": getattr(args, "storage_workers", None),
    }
    return storage_settings(base, getattr(args, "storage_key", None), overrides, environ)


def add_cube_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ChRIS CUBE (flags override the cube.json entry)")
    group.add_argument("--CUBE", dest="cube_key", metavar="KEY",
                       help="entry in <BASEMOUNT>/services/cube.json (or $PYPX_CUBE)")
    group.add_argument("--CUBEURL", dest="cube_url", metavar="URL", help="API root, e.g. http://host:8000/api/v1/")
    group.add_argument("--CUBEusername", dest="cube_username", metavar="USER", help="CUBE user (default chris)")
    group.add_argument("--CUBEuserpasswd", dest="cube_password", metavar="PASSWORD",
                       help="CUBE password (prefer $PYPX_CUBE_PASSWORD or the entry: flags show in `ps`)")
    group.add_argument("--CUBEtoken", dest="cube_token", metavar="TOKEN", help="CUBE auth token ($PYPX_CUBE_TOKEN)")


def cube_settings_from_args(args: argparse.Namespace, base: Basemount,
                            environ: Mapping[str, str] | None = None) -> CubeSettings:
    """CUBE settings from the flags of `add_cube_options` (`environ`: the CLI's Env.environ)."""
    environ = os.environ if environ is None else environ
    overrides = {
        "url": getattr(args, "cube_url", None),
        "username": getattr(args, "cube_username", None),
        "password": getattr(args, "cube_password", None) or environ.get("PYPX_CUBE_PASSWORD"),
        "token": getattr(args, "cube_token", None) or environ.get("PYPX_CUBE_TOKEN"),
    }
    return cube_settings(base, getattr(args, "cube_key", None), overrides, environ)
