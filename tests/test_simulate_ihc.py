"""The demo IHC generator regenerates byte-identically and matches the shipped files."""

import hashlib

import pandas as pd

from sepher.simulate.ihc_images import write_demo_ihc


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_demo_ihc_is_byte_identical(tmp_path, project_dir):
    write_demo_ihc(tmp_path / "a", seed=20200279)
    first = _digests(tmp_path / "a")
    demo = project_dir / "resources" / "demo"
    shipped = {k: hashlib.sha256((demo / k).read_bytes()).hexdigest() for k in first}
    assert shipped == first  # the committed demo is this generator's output
    sheet = pd.read_csv(tmp_path / "a" / "images_ihc.tsv", sep="\t")
    assert list(sheet.columns) == [
        "image_id",
        "path",
        "assay",
        "pixel_size_um",
        "patient_id",
        "timepoint",
    ]
    assert set(sheet["timepoint"]) == {"pre", "post"} and (sheet["assay"] == "IHC").all()
    assert sheet["patient_id"].nunique() == 4
