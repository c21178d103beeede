"""Fusion Lens — show it, say it, type it: webcam + microphone + text, fused, with what counted.

    python app.py [--model DIR] [--device cpu|cuda] [--host 0.0.0.0] [--port 7860] [--share]

The page is laid out in ``fusion.app`` (also installed as the ``fusion-lens`` command); this file is what
``python app.py`` and a Hugging Face Space run.
"""

from fusion.app import build_demo, main  # noqa: F401 (build_demo: for scripts and tests that build the page)

if __name__ == "__main__":
    main()
