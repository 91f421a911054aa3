"""The terminal table of an evaluation result (``dexdistill evaluate`` prints it)."""

from __future__ import annotations

from typing import Any


def format_table(result: dict[str, Any]) -> str:
    """A compact human-readable table of a :func:`run` result."""
    pm = "\u00b1"
    lines = [
        f"{result['policy']} on {result['task']} | randomization={result['randomization']} | "
        f"{result['episodes']} episodes, seed {result['seed']}",
        f"  success       {result['success_rate']:.3f} {pm} {result['success_ci95']:.3f}",
    ]
    if "teacher_success_rate" in result:
        lines.append(
            f"  teacher       {result['teacher_success_rate']:.3f} {pm} "
            f"{result['teacher_success_ci95']:.3f}   gap {result['gap']:+.3f}"
        )
    lines.append(f"  return        {result['return_mean']:.3f}")
    lines.append(f"  length        {result['length_mean']:.1f}")
    if "action_error" in result:
        lines.append(f"  action error  {result['action_error']:.4g}  (vs teacher, student states)")
    if "consecutive_successes" in result:
        c = result["consecutive_successes"]
        lines.append(
            f"  consecutive   {c['mean']:.1f} {pm} {c['std']:.1f}  median {c['median']:.1f}"
        )
    if "drop_rate" in result:
        lines.append(f"  drop rate     {result['drop_rate']:.3f}")
    robustness = result.get("robustness", {})
    if robustness:
        teacher = any("teacher_success_rate" in r for rows in robustness.values() for r in rows)
        lines.append(f"  robustness ({result.get('sweep_episodes', '?')} episodes per value)")
        header = f"    {'sweep':<15}{'value':>8}   {'success':<15}"
        lines.append(header + ("teacher" if teacher else ""))
        for sweep, rows in robustness.items():
            for i, r in enumerate(rows):
                v = r["value"]
                v = f"{v:.4g}" if isinstance(v, float) else str(v)
                cell = f"{r['success_rate']:.3f} {pm} {r['success_ci95']:.3f}"
                line = f"    {sweep if i == 0 else '':<15}{v:>8}   {cell:<15}"
                if "teacher_success_rate" in r:
                    line += f"{r['teacher_success_rate']:.3f}"
                lines.append(line)
    if "eval_s" in result:
        lines.append(
            f"  time          {result['eval_s']:.1f} s (compile {result['compile_s']:.1f} s)"
        )
    return "\n".join(lines)
