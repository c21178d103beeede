"""Teaching your own classes (fusion.teach, the Teach tab's handlers): a non-digit task from a few examples,
its limits, its zip (read back by the tab, ``fusion.load_model`` and ``python -m fusion train``), and the
separation of browser sessions."""

import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from corpus import assert_user_facing, shape_picture
from gradio.context import LocalContext

import fusion
from fusion.data.manifest import read_manifest_or_zip
from fusion.errors import CheckpointError, InputError, ManifestError
from fusion.pipeline import LoadedModel
from fusion.serving import FusionService, shipped_models
from fusion.teach import MAX_CLASSES, NONE, Project
from fusion.teach_page import TeachPage, report_html

ROOT = Path(__file__).resolve().parent.parent
TEXTS = {"circle": ["a round ring", "a circle drawn in pen"], "triangle": ["three corners", "a pointy triangle"]}
NONE_TEXTS = ["hello there", "what a lovely day", "my name is anna", "good morning"]


def shapes_project(loaded, folder: Path, per_class: int) -> Project:
    """A project with the classes circle and triangle, ``per_class`` examples each (a drawing and a text)."""
    project = Project.like(loaded)
    for shape, texts in TEXTS.items():
        project.add_class(shape)
        for seed in range(per_class):
            project.add_example(shape, image=str(shape_picture(folder / f"{shape}{seed}.png", shape, seed)),
                                text=texts[seed % 2])
    return project


@pytest.fixture(scope="module")
def loaded():
    return fusion.load_model(device="cpu")


@pytest.fixture(scope="module")
def taught(loaded, tmp_path_factory):
    """Circle and triangle, 4 examples each (a drawing and a description), trained -> (project, its zip)."""
    folder = tmp_path_factory.mktemp("shapes")
    project = shapes_project(loaded, folder, 4)
    project.train()
    yield project, project.save_zip(folder / "shapes.zip")
    project.close()


def test_training_reports_every_subset_and_each_class_weights(taught):
    project, _ = taught
    report = project.report
    assert report.folds == 4 and report.examples == 8 and report.seconds < 90
    assert set(report.cv_accuracy) == {"image", "text", "image+text"}
    assert report.cv_accuracy["image+text"] >= 0.75
    assert set(report.weights) == {"circle", "triangle"}
    for weights in report.weights.values():
        assert set(weights) == {"image", "text"} and sum(weights.values()) == pytest.approx(1, abs=0.01)
    # no examples of none of the classes: it always answers one, and says how to change that
    assert report.abstention is None and "abstain_below" not in project.model.config.get("calibration", {})
    assert any(NONE in note and "always answers" in note for note in report.notes)


def test_training_progress_counts_the_fits(loaded, tmp_path):
    """One step per cross-validation fold, then the fit on every example: the page shows "1/3 steps"."""
    project = shapes_project(loaded, tmp_path, 2)
    steps = []
    project.train(progress=lambda done, desc=None: steps.append((done, desc)))
    assert steps == [((0, 3), "cross-validation, fold 1 of 2"), ((1, 3), "cross-validation, fold 2 of 2"),
                     ((2, 3), "training on every example"), ((3, 3), "done")]
    project.close()


def test_examples_of_none_teach_the_model_to_say_so(loaded, tmp_path):
    """Blank paper and small talk taught as "none of these": new ones get no class, new shapes theirs, with
    thresholds calibrated on the held-out folds; the zip keeps them as negatives (empty labels)."""
    project = shapes_project(loaded, tmp_path, 4)
    try:
        for seed, text in enumerate(NONE_TEXTS):
            project.add_example(None, image=str(shape_picture(tmp_path / f"blank{seed}.png", "blank", seed)),
                                text=text)
        report = project.train()
        assert report.folds == 4 and report.examples == 12 and not report.notes
        assert report.abstention["negatives_abstained"]["image"] >= 0.75
        assert max(report.abstention["positives_given_up"].values()) <= 0.25
        assert set(project.model.config["calibration"]["abstain_below"]) == {"image", "text", "image+text"}
        assert "none recognised" in report_html(report)
        model = LoadedModel(project.model, loaded.encoders, loaded.device, project.folder)
        for seed in (98, 99):
            blank = fusion.predict(model, image=str(shape_picture(tmp_path / f"new-blank{seed}.png", "blank", seed)))
            assert blank.label is None and any("No class recognised" in note for note in blank.notes)
            circle = shape_picture(tmp_path / f"new-circle{seed}.png", "circle", seed)
            assert fusion.predict(model, image=str(circle)).label == "circle"
        archive = project.save_zip(tmp_path / "with-none.zip")
        assert sum(row["label"] is None for row in read_manifest_or_zip(archive, tmp_path / "unpacked")) == 4
        restored, notes = Project.from_zip(archive, loaded)
        try:
            assert not notes and restored.classes == project.classes and restored.count(None) == 4
            assert restored.model.config["calibration"] == project.model.config["calibration"]
        finally:
            restored.close()
    finally:
        project.close()


def test_load_model_reads_the_downloaded_zip_and_predicts_a_new_example(taught, tmp_path):
    _, archive = taught
    model = fusion.load_model(archive, device="cpu")
    assert model.labels == ["circle", "triangle"]
    for shape in TEXTS:
        picture = shape_picture(tmp_path / f"new-{shape}.png", shape, seed=99)
        assert fusion.predict(model, image=str(picture)).label == shape


def test_the_cli_trains_on_the_project_zip(taught, tmp_path):
    _, archive = taught
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-m", "fusion", "train", "--manifest", str(archive), "--out", str(out),
                          "--epochs", "3"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "validation: 2 rows held out of shapes.zip" in run.stdout
    assert fusion.load_model(out, device="cpu").labels == ["circle", "triangle"]


def test_a_project_zip_restores_classes_examples_and_model(taught, loaded):
    project, archive = taught
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert {"manifest.csv", "model/config.json", "model/model.safetensors", "model/README.md"} <= names
    restored, notes = Project.from_zip(archive, loaded)
    try:
        assert not notes and restored.classes == project.classes and len(restored.examples) == 8
        assert restored.model is not None and restored.model.labels == project.classes
        assert all(Path(e.inputs["image"]).is_relative_to(restored.folder) for e in restored.examples)
    finally:
        restored.close()


@pytest.mark.parametrize("image_spec, width, named", [
    ({"blocks": None}, 1280, "image features of width 1280, the served image encoder gives 192"),
    ({"preprocessing": "center"}, 192, "image encoder preprocessing 'center' (served: 'digit')"),
], ids=["width", "preprocessing"])
def test_a_zips_model_on_other_encoders_is_not_served_and_the_note_says_which(loaded, tmp_path, image_spec, width,
                                                                              named):
    """Served on the app's encoders it would crash (another width) or read other features: its labels match."""
    from fusion.model import FusionModel, default_config

    specs = {"image": {**loaded.fusion.config["encoders"]["image"], **image_spec},
             "text": loaded.fusion.config["encoders"]["text"]}
    FusionModel(default_config(list(TEXTS), "attention", encoders=specs, encoder_dims={"image": width, "text": 384})
                ).save_pretrained(tmp_path / "model")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("manifest.csv", "image,audio,text,label\n" +
                         "".join(f",,{texts[0]},{shape}\n" for shape, texts in TEXTS.items()))
        for file in (tmp_path / "model").iterdir():
            archive.write(file, f"model/{file.name}")
    project, notes = Project.from_zip(tmp_path / "other.zip", loaded)
    try:
        assert project.classes == list(TEXTS) and project.model is None
        assert notes == [f"The zip's model was trained on other encoders than this app serves ({named}): train again."]
    finally:
        project.close()


def test_inputs_no_none_example_had_never_say_none(loaded, tmp_path):
    """None examples typed only: the text gets a threshold, the picture none (its threshold would rest on
    the classes' few pictures alone), so no held-out picture of a class is called none."""
    project = shapes_project(loaded, tmp_path, 3)
    try:
        for text in NONE_TEXTS[:3]:
            project.add_example(None, text=text)
        report = project.train()
        below = project.model.config["calibration"]["abstain_below"]
        assert "text" in below and "image" not in below
        assert report.abstention["positives_given_up"]["image"] == 0
        assert "image" not in project.model.config["calibration"]["unimodal_abstain_below"]
    finally:
        project.close()


def test_limits_and_mistakes_have_clear_messages(loaded, tmp_path):
    project = Project.like(loaded)
    try:
        for name, phrase in [("", "name first"), ("x" * 41, "at most 40 characters"),
                             ("None of these", "name the class otherwise")]:
            with pytest.raises(InputError) as error:
                project.add_class(name)
            assert_user_facing(str(error.value), phrase)
        for n in range(MAX_CLASSES):
            project.add_class(f"class {n}")
        for name, phrase in [("class 0", "already a class"), ("one more", f"At most {MAX_CLASSES} classes")]:
            with pytest.raises(InputError) as error:
                project.add_class(name)
            assert_user_facing(str(error.value), phrase)
        for label, values, phrase in [("class 0", {}, "at least one input"),
                                      ("nope", {"text": "hi"}, "Choose the class"),
                                      ("class 0", {"image": str(tmp_path / "missing.png")}, "")]:
            with pytest.raises(InputError) as error:
                project.add_example(label, **values)
            assert str(tmp_path) not in str(error.value) and (not phrase or phrase in str(error.value))
        with pytest.raises(InputError, match="each with at least one example"):
            project.train()
    finally:
        project.close()


def test_unsafe_or_broken_zips_are_refused(tmp_path):
    escaping = tmp_path / "escaping.zip"
    with zipfile.ZipFile(escaping, "w") as z:
        z.writestr("manifest.csv", "text,label\nhi,a\n")
        z.writestr("../outside.txt", "no")
    not_zip = tmp_path / "not.zip"
    not_zip.write_text("plain text")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "nothing here")
    for path, phrase in [(escaping, "outside its folder"), (not_zip, "not a zip file"), (empty, "no manifest.csv")]:
        with pytest.raises(ManifestError) as error:
            read_manifest_or_zip(path, tmp_path / f"unpacked-{path.stem}")
        assert_user_facing(str(error.value), phrase)
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(CheckpointError, match="holds no model"):
        fusion.load_model(empty, device="cpu")


def test_each_browser_session_has_its_own_project_and_its_files_go_with_it():
    attention = {"attention": shipped_models()["attention"]}
    page = TeachPage(FusionService(attention, device="cpu"))
    tab_a, tab_b = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    project_a, *_ = page.add_class(None, "mug", 0, tab_a)
    project_b, *_ = page.add_class(None, "cup", 0, tab_b)
    assert project_a is not project_b and project_a.classes == ["mug"] and project_b.classes == ["cup"]
    project_a.add_example(None, text="hello")  # "Remove class" on none of these removes its examples
    project_a, _, version = page.remove_class(project_a, NONE, 0)
    assert project_a.count(None) == 0 and project_a.classes == ["mug"] and version == 1
    page.end_session(tab_a)
    assert not project_a.folder.exists() and project_b.folder.exists() and set(page.sessions) == {"b"}
    page.end_session(tab_b)
    assert not project_b.folder.exists()


def test_projects_go_with_sessions_gradio_forgets():
    """Gradio drops the least recently used session past its capacity without a callback: its project's
    folder and entry go when the next project is kept."""
    page = TeachPage(FusionService({"attention": shipped_models()["attention"]}, device="cpu"))
    held = {"a", "b", "c"}  # the sessions the serving app's state holder still has
    running = LocalContext.blocks.set(SimpleNamespace(state_holder=held))
    try:
        projects = {tab: page.add_class(None, tab, 0, SimpleNamespace(session_hash=tab))[0] for tab in "ab"}
        held.discard("a")  # forgotten past the capacity
        project_c, *_ = page.add_class(None, "c", 0, SimpleNamespace(session_hash="c"))
        assert set(page.sessions) == {"b", "c"} and not projects["a"].folder.exists()
        assert projects["b"].folder.exists() and project_c.folder.exists()
    finally:
        LocalContext.blocks.reset(running)
    page.service.close()


def test_push_to_hub_sends_the_taught_model_with_the_users_own_token(taught, recording_api):
    project, _ = taught
    page = TeachPage(service=None)  # pushing needs no served model
    assert page.push(project, "me/shapes", "", True) == "" and not recording_api  # no token: nothing sent
    shown = page.push(project, " me/shapes ", "hf_user", True)
    assert "Uploaded to" in shown and "me/shapes" in shown
    (_, token, _), (_, repo, created), (_, _, uploaded) = recording_api
    assert token == "hf_user" and repo == "me/shapes" and created["private"] is True
    assert {"config.json", "model.safetensors", "README.md"} <= set(uploaded["files"])
    assert "circle" in uploaded["files"]["README.md"].decode()


def test_a_signed_in_push_uses_the_visitors_oauth_token(taught, recording_api):
    import gradio as gr

    project, _ = taught
    page = TeachPage(service=None)
    assert page.push_signed_in(project, "me/shapes", True, None) == "" and not recording_api  # not signed in
    shown = page.push_signed_in(project, "me/shapes", False, gr.OAuthToken("hf_oauth", "contribute-repos", 0))
    assert "Uploaded to" in shown
    (_, token, _), (_, repo, created), _ = recording_api
    assert token == "hf_oauth" and repo == "me/shapes" and created["private"] is False
