"""Pages written while ``mkdocs build`` runs (mkdocs-gen-files): home, API reference, transform gallery.

* ``index.md``: README.md, its ``docs/`` links made relative to the site;
* ``reference/NAME.md``: the API reference of the package root and each public subpackage
  (mkdocstrings reads the docstrings; a package with ``__all__`` shows those names, one
  without shows each public module);
* ``gallery/``: :func:`medaug.preview.gallery.write_gallery`, pictures made now on the shipped sample data.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from pathlib import Path

import mkdocs_gen_files

from medaug.preview.gallery import write_gallery

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "medaug"
#: Reference page -> (title, package or module).
PACKAGES = {
    "medaug": ("The package root", "medaug"),
    "data": ("Data model and I/O", "medaug.data"),
    "engine": ("Engine", "medaug.engine"),
    "spatial": ("Spatial transforms", "medaug.spatial"),
    "intensity": ("Intensity transforms", "medaug.intensity"),
    "presets": ("Presets, constraints and the transform catalog", "medaug.presets"),
    "datasets": ("Datasets and offline jobs", "medaug.datasets"),
    "registration": ("Registration and learned deformations", "medaug.registration"),
    "preview": ("Previews, gallery and review", "medaug.preview"),
    "interop": ("MONAI and TorchIO", "medaug.interop"),
    "metrics": ("Metrics", "medaug.metrics"),
    "inference": ("Test-time augmentation", "medaug.inference"),
}


def home() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("](docs/", "](")
    with mkdocs_gen_files.open("index.md", "w") as f:
        f.write(text)


def _source(module: str) -> Path:
    path = SRC.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _all(module: str) -> set[str] | None:
    """The names in ``module``'s ``__all__`` (read from its source, nothing imported), or None without one."""
    for node in ast.parse(_source(module).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def public_modules(package: str) -> list[str]:
    """The package's public modules (not ``_x``) with ``__all__`` naming something the package does not re-export."""
    shown = _all(package) or set()
    found = []
    for path in sorted(_source(package).parent.iterdir()):
        name = path.stem if path.suffix == ".py" else path.name if (path / "__init__.py").exists() else ""
        if not name or name.startswith("_"):
            continue
        names = _all(f"{package}.{name}")
        if names and not names <= shown:
            found.append(f"{package}.{name}")
    return found


def reference() -> None:
    for page, (title, target) in PACKAGES.items():
        lines = [f"# {title}", "", f"::: {target}", ""]
        if _source(target).name == "__init__.py" and page != "medaug":
            lines += [f"::: {module}\n" for module in public_modules(target)]
        with mkdocs_gen_files.open(f"reference/{page}.md", "w") as f:
            f.write("\n".join(lines))


def gallery() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_gallery(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                with mkdocs_gen_files.open(f"gallery/{path.relative_to(tmp).as_posix()}", "wb") as f:
                    shutil.copyfileobj(path.open("rb"), f)


home()
reference()
gallery()
