"""What the Teach tab's events call: one ``fusion.teach.Project`` per browser session (a ``gr.State``).

Each handler takes the session's project (None until the first class) and returns it with the outputs;
a user's mistake is a ``gr.Warning`` with its message, anything else is logged and apologised for
(``serving.attempt``). A project's files go when its browser session ends (``end_session``, on
``demo.unload``) or, through the state's ``delete_callback``, after ``IDLE_SECONDS`` without use.

The parts that run the encoders or train (``encode_example``, ``encode_files``, ``fit``, ``restore``) run under
``spaces.GPU`` on ZeroGPU, in another process (``fusion.gpu``): they take the project and give it back, and the
handlers around them keep the session bookkeeping (a new project, ``sessions``) in the server's process.
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

import gradio as gr

from .errors import InputError
from .gpu import EXAMPLE_S, deadline_s, files_duration, on_gpu, restore_duration, train_duration
from .serving import TAUGHT, attempt, drop_ended_sessions, forget_served, upload_path, with_paths
from .teach import (
    MAX_CLASSES,
    MAX_EXAMPLES_PER_CLASS,
    MAX_RESTORE_SECONDS,
    MAX_TRAIN_SECONDS,
    NONE,
    Project,
    plot_weights,
)

IDLE_SECONDS = 3600
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".webm", ".aac"}
HELP = f"""Name 2 to {MAX_CLASSES} classes, then give each a few examples: a picture, a recording, a text, or any
mix of them (several files at once work too, one example per file; a .txt file gives one example per line).
Examples added to **{NONE}** (a face, the room, other words) teach the model to say an input is none of your
classes.
**Train** fits a fusion model on what the encoders make of your examples (at most {MAX_TRAIN_SECONDS} s),
says how well it does on examples it did not see, and makes it the **{TAUGHT}** strategy of the Fuse tab.
Up to {MAX_EXAMPLES_PER_CLASS} examples per class; your examples stay in this browser session only."""


def taught_label(choice: str | None) -> str | None:
    """The "Add examples to" dropdown's choice -> the examples' label (None for ``NONE``)."""
    return None if choice == NONE else choice


def delete_project(project: Project | None) -> None:
    """A session's project goes: its folder and Gradio's copies of the files it was shown."""
    if project is not None:
        forget_served(project.folder)
        project.close()


def report_html(report) -> str:
    """A ``TeachReport`` as the panel beside the examples: per subset of inputs, the held-out accuracy and,
    for a model that can say none, how often it did on held-out none-of-these examples and on the classes'."""
    def share(value):
        return "—" if value is None else f"{value:.0%}"

    abstention = report.abstention
    head = "<th scope=\"col\">inputs</th><th scope=\"col\">accuracy</th>" + (
        "<th scope=\"col\">none recognised</th><th scope=\"col\">class examples called none</th>" if abstention else "")
    rows = ""
    for subset, accuracy in report.cv_accuracy.items():
        cells = [share(accuracy)] + ([share(abstention["negatives_abstained"].get(subset)),
                                      share(abstention["positives_given_up"].get(subset))] if abstention else [])
        rows += (f"<tr><td>{escape(subset.replace('+', ' + '))}</td>"
                 + "".join(f"<td class=num>{cell}</td>" for cell in cells) + "</tr>")
    notes = "".join(f'<p class="fl-foot">{escape(note)}</p>' for note in report.notes)
    held = (f"{report.folds}-fold cross-validation over your {report.examples} examples" if report.folds
            else "no cross-validation")
    return (f'<div class="fl-panel"><table><caption>On examples the model did not see ({held})</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table><p class="fl-foot">Trained in '
            f'{report.seconds:.1f} s. The Fuse tab now has “{TAUGHT}” as a strategy.</p>{notes}</div>')


class TeachPage:
    """The Teach tab's handlers, sharing the served default model's encoders."""

    def __init__(self, service):
        self.service = service
        self.sessions: dict[str, Project] = {}  # session hash -> its project, for end_session
        # What touches the encoders, each for a GPU time fitted to it (ZeroGPU; unchanged elsewhere).
        self.encode_example = on_gpu(self.encode_example, EXAMPLE_S)
        self.encode_files = on_gpu(self.encode_files, files_duration)
        self.fit = on_gpu(self.fit, train_duration)
        self.restore = on_gpu(self.restore, restore_duration)

    def project(self, project: Project | None, request: gr.Request | None) -> Project:
        """The session's project, made on its first use."""
        if project is None:
            project = Project.like(self.service.models[self.service.default], self.service.projects,
                                   self.service.stopping)
            self.remember(project, request)
        return project

    def remember(self, project: Project, request: gr.Request | None) -> None:
        """Keep ``project`` as its session's, for ``end_session``; sessions Gradio has dropped go first."""
        drop_ended_sessions(self.sessions, end=delete_project)
        if request is not None and request.session_hash:
            self.sessions[request.session_hash] = project

    def end_session(self, request: gr.Request) -> None:
        """``demo.unload``: the closed tab's files go now rather than when its state expires."""
        delete_project(self.sessions.pop(request.session_hash, None))

    def classes_update(self, project: Project, value=None):
        """The "Add examples to" choices: the classes, then ``NONE`` (once there is a class)."""
        classes = project.classes if project else []
        choices = [*classes, NONE] if classes else []
        return gr.update(choices=choices, value=value if value in choices else (classes[-1] if classes else None))

    def add_class(self, project, name, version, request: gr.Request):
        project = self.project(project, request)
        added, _ = attempt("teach_class", "teach", [], lambda: project.add_class(name))
        return project, self.classes_update(project, added), "" if added else name, version + (added is not None)

    def remove_class(self, project, name, version):
        """Remove the chosen class and its examples (``NONE``: the examples of none of the classes)."""
        label = taught_label(name)
        if project is None or (label is not None and label not in project.classes):
            return project, self.classes_update(project), version
        project.remove_class(label)
        return project, self.classes_update(project), version + 1

    def add_example(self, request: gr.Request, project, label, version, *values):
        """One example from the inputs (a value per modality of ``service.modalities``, any of them given)
        -> (project, version, the inputs cleared)."""
        project, version, *cleared = self.encode_example(self.project(project, request), label, version, *values)
        self.remember(project, request)
        return project, version, *cleared

    def encode_example(self, project, label, version, *values):
        """``add_example``'s encoding, for a project that exists."""
        given = self.service.present(dict(zip(self.service.modalities, values)))
        added, _ = attempt("teach_example", "teach", sorted(given),
                           lambda: project.add_example(taught_label(label), **with_paths(given)))
        if added is None:
            return project, version, *[gr.update()] * len(values)
        for note in added[1]:
            gr.Info(note)
        return project, version + 1, *[None] * len(values)

    def add_files(self, project, label, files, version, request: gr.Request):
        """Several files at once: each picture or recording is one example, each line of a .txt file one."""
        project, files, version = self.encode_files(self.project(project, request), label, files, version)
        self.remember(project, request)
        return project, files, version

    def encode_files(self, project, label, files, version):
        """``add_files``' encoding, for a project that exists."""
        added = 0
        for value in files or []:
            path, _ = attempt("teach_files", "teach", [], lambda value=value: Path(upload_path(value)))
            if path is None:
                continue
            suffix = path.suffix.lower()
            if suffix == ".txt":
                lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
                inputs = [{"text": line} for line in lines]
            elif suffix in IMAGE_SUFFIXES or suffix in AUDIO_SUFFIXES:
                inputs = [{"image" if suffix in IMAGE_SUFFIXES else "audio": str(path)}]
            else:
                gr.Warning(f"{path.name}: not a picture, a recording or a .txt file.")
                continue
            for given in inputs:
                done, _ = attempt("teach_example", "teach", sorted(given),
                                  lambda given=given: project.add_example(taught_label(label), **given),
                                  warn=lambda message, name=path.name: gr.Warning(f"{name}: {message}"))
                added += done is not None
        return project, None, version + (added > 0)

    def remove_example(self, project, example_id: int, version):
        if project is not None:
            project.remove_example(example_id)
        return project, version + 1

    def train(self, project, strategy, version, progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
        """Train -> (project, report, plot, the Fuse tab's strategy choices)."""
        if project is None:
            gr.Warning("Add classes and examples first.")
            return project, "", None, gr.update(), version
        return self.fit(project, strategy, version, progress)

    def fit(self, project, strategy, version, progress=None):
        """``train``'s training (within the GPU time it asked for on ZeroGPU), for a project that exists."""
        seconds = deadline_s(train_duration, MAX_TRAIN_SECONDS, project, strategy, version)
        report, _ = attempt("teach_train", strategy, [str(len(project.examples))],
                            lambda: project.train(strategy, progress=progress, max_seconds=seconds))
        if report is None:
            return project, "", None, gr.update(), version
        summary = report_html(report)
        choices = [*self.service.models, TAUGHT]
        return project, summary, plot_weights(report, project.classes), gr.update(choices=choices, value=TAUGHT), \
            version + 1

    def download(self, project):
        """The project as a zip (model, examples, manifest.csv) in the file box."""
        if project is None or not project.examples:
            gr.Warning("Nothing to download yet: add examples first.")
            return gr.update(value=None, visible=False)
        path, _ = attempt("teach_download", "teach", [], lambda: project.save_zip(
            Path(tempfile.mkdtemp(dir=project.folder)) / "fusion-lens-project.zip"))
        return gr.update(value=str(path), visible=True) if path else gr.update(value=None, visible=False)

    def upload(self, project, archive, version, request: gr.Request):
        """A zip from Download: its classes, examples and model replace the session's project -> (project, the
        class choices, the report panel saying what was restored, the plot, the Fuse tab's strategy)."""
        unchanged = project, self.classes_update(project), gr.update(), gr.update(), gr.update(), version
        restored = None if archive is None else self.restore(archive)
        if restored is None:
            return unchanged
        delete_project(project)
        project, notes = restored
        self.remember(project, request)
        examples = len(project.examples)
        said = (f"Restored {len(project.classes)} classes ({', '.join(project.classes)}) and {examples} "
                f"example{'s' * (examples != 1)}"
                + (f", with its trained model: “{TAUGHT}” is selected in the Fuse tab." if project.model is not None
                   else "; train to use them in the Fuse tab."))
        gr.Info(said)
        for note in notes:
            gr.Info(note)
        trained = project.model is not None
        choices = [*self.service.models, *[TAUGHT] * trained]
        panel = f'<div class="fl-panel"><p>{escape(said)}</p>{"".join(f"<p>{escape(n)}</p>" for n in notes)}</div>'
        return (project, self.classes_update(project), panel, None,
                gr.update(choices=choices, value=TAUGHT if trained else self.service.default), version + 1)

    def restore(self, archive):
        """``upload``'s re-encoding of a project zip (the upload, or on ZeroGPU its checked path) -> (project,
        notes), or None (a message was shown)."""
        seconds = deadline_s(restore_duration, MAX_RESTORE_SECONDS, archive)
        restored, _ = attempt("teach_upload", "teach", [], lambda: Project.from_zip(
            upload_path(archive), self.service.models[self.service.default], self.service.projects,
            self.service.stopping, max_seconds=seconds))
        return restored

    def push(self, project, repo_id: str, token: str, private: bool) -> str:
        """Push to Hub off Spaces: with the access token the user pasted, used for this upload only."""
        return self.push_as(project, repo_id, private, token, "Paste a Hugging Face access token with write "
                            "permission (huggingface.co/settings/tokens); it is used for this upload only.")

    def push_signed_in(self, project, repo_id: str, private: bool, oauth_token: gr.OAuthToken | None) -> str:
        """Push to Hub on a Space with OAuth: as the visitor who signed in (Gradio injects their token, limited
        to the scopes the Space's ``hf_oauth_scopes`` asks for)."""
        return self.push_as(project, repo_id, private, oauth_token.token if oauth_token else "",
                            "Sign in with Hugging Face first (the button above Push): the model goes to your "
                            "account.")

    def push_as(self, project, repo_id: str, private: bool, token: str, no_token: str) -> str:
        """The session's taught model to the user's repository with the user's own token -> a line with its
        link; ``no_token``: what to say without one. Never the server's token: on a public Space that would
        upload into the Space owner's account."""
        def run():
            if project is None or project.model is None:
                raise InputError("Train a model first: Push sends the trained model.")
            if not (token or "").strip():
                raise InputError(no_token)
            return project.model.push_to_hub((repo_id or "").strip(), token=token.strip(), private=private)

        url, _ = attempt("teach_push", "teach", [], run)
        return f"Uploaded to [{escape(url)}]({escape(url)})." if url else ""
