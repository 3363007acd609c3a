"""Lineage as the store knows it: each dataset's upstreams (the config's `upstream`,
mirrored by `catalog.sync_datasets`), read once into a small graph that gates and
incidents walk. The config refuses unknown names and cycles; a name the store does not hold
(a dataset made by hand, a config edited since) is left out here rather than trusted."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Dataset


@dataclass(frozen=True)
class Lineage:
    names: dict[int, str]                    # dataset id -> name
    upstream: dict[int, tuple[int, ...]]     # dataset id -> the ids it is built from

    def ancestors(self, dataset_id: int) -> set[int]:
        """Every dataset `dataset_id` is built from, directly or not (itself excluded)."""
        return self._reach(dataset_id, self.upstream)

    def descendants(self, dataset_id: int) -> set[int]:
        """Every dataset built from `dataset_id`, directly or not (itself excluded)."""
        return self._reach(dataset_id, self._downstream)

    def related(self, dataset_id: int) -> set[int]:
        """Itself, its ancestors and its descendants: where one cause can show."""
        return {dataset_id, *self.ancestors(dataset_id), *self.descendants(dataset_id)}

    def depth(self, dataset_id: int) -> int:
        """How far from a source: 0 for a dataset built from nothing, else one more than
        its deepest upstream. The most upstream alert of an incident has the least."""
        depths: dict[int, int] = {}
        todo = [dataset_id]
        while todo:  # iteratively, deepest first: a long chain must not hit the recursion limit
            current = todo[-1]
            parents = self.upstream.get(current, ())
            waiting = [p for p in parents if p not in depths]
            if waiting:
                todo.extend(waiting)
                continue
            todo.pop()
            depths[current] = 1 + max((depths[p] for p in parents), default=-1)
        return depths[dataset_id]

    @property
    def _downstream(self) -> dict[int, tuple[int, ...]]:
        down: dict[int, list[int]] = {i: [] for i in self.names}
        for child, parents in self.upstream.items():
            for parent in parents:
                down[parent].append(child)
        return {i: tuple(c) for i, c in down.items()}

    @staticmethod
    def _reach(start: int, edges: dict[int, tuple[int, ...]]) -> set[int]:
        seen: set[int] = set()
        todo = list(edges.get(start, ()))
        while todo:
            current = todo.pop()
            if current not in seen and current != start:
                seen.add(current)
                todo.extend(edges.get(current, ()))
        return seen


def read_lineage(session: Session) -> Lineage:
    rows = session.execute(select(Dataset.id, Dataset.name, Dataset.upstream)).all()
    ids = {name: i for i, name, _ in rows}
    return Lineage(names={i: name for i, name, _ in rows},
                   upstream={i: tuple(ids[n] for n in (up or []) if n in ids and ids[n] != i)
                             for i, _, up in rows})
