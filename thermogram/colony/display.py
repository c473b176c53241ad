"""HTML display of a colony (for notebooks)."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from ..core import Thermogram
from ..neuromod import NeuromodState
from .config import ColonyMetadata
from .topology import member_key_count


def colony_html(colony_id: str, name: str, members: Sequence[Thermogram], neuro: Sequence[NeuromodState],
                central: NeuromodState, shares: Sequence[float], metadata: ColonyMetadata) -> str:
    """A table of members (hash share, entries per layer, keys, pending deltas,
    neuromodulator levels) with totals, and the central neuromodulator levels."""
    esc = html.escape
    rows = []
    tot = np.zeros(6, np.int64)
    for i, m in enumerate(members):
        c = m.layer_counts()
        keys = member_key_count(m)
        vals = [c["hot"], c["warm"], c["cool"], c["cold"], keys, m.pending_count]
        tot += vals
        lv = " / ".join(f"{x:.2f}" for x in neuro[i].as_array())
        rows.append(f"<tr><td>{esc(m.id)}</td><td style='text-align:right'>{100 * shares[i]:.1f}%</td>"
                    + "".join(f"<td style='text-align:right'>{v}</td>" for v in vals)
                    + f"<td>{lv}</td></tr>")
    rows.append("<tr><td><b>total</b></td><td></td>"
                + "".join(f"<td style='text-align:right'><b>{int(v)}</b></td>" for v in tot)
                + "<td></td></tr>")
    levels = " · ".join(f"{k} {v:.3f}" for k, v in central.to_dict().items())
    return (f"<div class='thermogram-colony'><b>ThermogramColony</b> {esc(repr(name))} "
            f"<small>({esc(colony_id)}: {len(members)} members, "
            f"{metadata.split_count} splits, {metadata.merge_count} merges)</small>"
            "<table><tr><th>member</th><th>hash share</th><th>hot</th><th>warm</th><th>cool</th>"
            "<th>cold</th><th>keys</th><th>pending</th><th>DA / 5-HT / NE / ACh</th></tr>"
            f"{''.join(rows)}</table>central neuromod: {levels}</div>")
