"""The served payment-risk models: versions on disk, loaded by version, with their model cards.

The default version (RISK_MODEL_VERSION, else the newest trained) is loaded at start: a missing
or unreadable model ends the start with one line saying which file and what to do, so a deploy
with a bad model never replaces a running service. Other versions load on first request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from cms.errors import StartupError
from domain.risk_features import FEATURE_NAMES, REASON_TEXT

REASONS_RETURNED = 3


class UnknownVersion(Exception):
    pass


@dataclass(frozen=True)
class Reason:
    feature: str
    text: str
    contribution: float      # log-odds


@dataclass
class CaseModel:
    version: str
    booster: lgb.Booster
    card: dict[str, Any]

    @classmethod
    def load(cls, directory: Path) -> CaseModel:
        model_file, card_file = directory / "model.txt", directory / "card.json"
        try:
            card = json.loads(card_file.read_text())
            booster = lgb.Booster(model_str=model_file.read_text())
        except FileNotFoundError as error:
            raise UnknownVersion(f"{error.filename} is missing") from None
        except (lgb.basic.LightGBMError, ValueError, OSError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UnknownVersion(f"{model_file} cannot be read ({first_line})") from None
        if booster.feature_name() != list(FEATURE_NAMES):
            raise UnknownVersion(f"{model_file} was trained on other features than this release computes")
        return cls(directory.name, booster, card)

    def score(self, row: list[float]) -> tuple[float, list[Reason]]:
        x = np.asarray([row], dtype=np.float64)
        probability = float(self.booster.predict(x, num_threads=1)[0])
        contributions = self.booster.predict(x, pred_contrib=True, num_threads=1)[0][:-1]
        ranked = sorted(zip(contributions, FEATURE_NAMES), reverse=True)[:REASONS_RETURNED]
        return probability, [Reason(name, REASON_TEXT[name], float(value)) for value, name in ranked if value > 0]


class ModelShelf:
    """Every version under the models directory; the default one loaded and checked at start."""

    def __init__(self, directory: Path, default_version: str | None):
        self.directory = directory
        self._loaded: dict[str, CaseModel] = {}
        self.default_version = default_version or self._newest()
        if self.default_version is not None:
            try:
                self._loaded[self.default_version] = CaseModel.load(directory / self.default_version)
            except UnknownVersion as error:
                raise StartupError(f"risk: payment-risk model {self.default_version}: {error}; "
                                   "train one with `cms risk train` or set RISK_MODEL_VERSION to a good "
                                   "version") from None

    def versions(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _newest(self) -> str | None:
        found = []
        for version in self.versions():
            try:
                trained_on = json.loads((self.directory / version / "card.json").read_text())["trained_on"]
            except (OSError, ValueError, KeyError):
                continue
            found.append((trained_on, version))
        return max(found)[1] if found else None

    def get(self, version: str = "") -> CaseModel:
        wanted = version or self.default_version
        if wanted is None:
            raise UnknownVersion("no payment-risk model has been trained (run `cms risk train`)")
        if wanted not in self._loaded:
            if "/" in wanted or wanted.startswith(".") or wanted not in self.versions():
                raise UnknownVersion(f"model version {wanted!r} does not exist; known: "
                                     f"{', '.join(self.versions()) or 'none'}")
            self._loaded[wanted] = CaseModel.load(self.directory / wanted)
        return self._loaded[wanted]
