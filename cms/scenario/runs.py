"""The engine behind `cms scenario run`: reads scenarios, starts the services once, plays each.

`play_all` yields, for each scenario text in order, its result or the ScenarioError that stopped
it. A text that cannot be read is refused before anything starts; the services start with the
first scenario that can be played and serve every one after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from typing import Any

from cms.scenario.player import ScenarioPlayer
from cms.scenario.script import Scenario, ScenarioError, read_scenario
from cms.scenario.stack import ScenarioStack

Outcome = dict[str, Any] | ScenarioError


async def play_all(texts: Iterable[str]) -> AsyncIterator[Outcome]:
    async with AsyncExitStack() as running:
        player: ScenarioPlayer | None = None
        for text in texts:
            try:
                scenario = read_scenario(text)
                if player is None:
                    player = ScenarioPlayer(await running.enter_async_context(ScenarioStack()))
                yield await player.play(scenario)
            except ScenarioError as error:
                yield error


async def play_one(scenario: Scenario) -> dict[str, Any]:
    """One scenario already read (ScenarioError if the service refuses one of its requests)."""
    async with ScenarioStack() as services:
        return await ScenarioPlayer(services).play(scenario)
