"""Render deploy/k8s/prometheusrule.yaml from deploy/prometheus/rules/*.yml.

The Prometheus rules have one source, the files Prometheus loads under compose and promtool
tests; on Kubernetes the Prometheus Operator wants them inside a PrometheusRule resource.
This writes that resource (`--check`: exit 1 when the checked-in file differs from a fresh
render). tests/contract/test_k8s.py holds the checked-in file to a fresh render.

Written here rather than with a kustomize generator: kustomize has none for PrometheusRule,
and this needs only PyYAML (in the dev extras).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "rules"
OUTPUT = HERE / "prometheusrule.yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL expressions) as literal blocks, as the sources write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(rules_dir: Path = RULES) -> str:
    """The PrometheusRule resource holding every group of `rules_dir`/*.yml, in file order."""
    sources = sorted(rules_dir.glob("*.yml"))
    groups: list[dict[str, Any]] = []
    for path in sources:
        groups.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "okrflow",
            "labels": {"app.kubernetes.io/name": "okrflow", "app.kubernetes.io/part-of": "okrflow"},
        },
        "spec": {"groups": groups},
    }
    names = ", ".join(p.name for p in sources)
    header = (
        f"# Generated from deploy/prometheus/rules/ ({names}).\n"
        "# Do not edit: change the rules there and run deploy/k8s/render_prometheusrule.py.\n"
        "# Add the label your Prometheus selects rules by (often `release: <name>`) in an overlay.\n"
    )
    # No line folding: one annotation, one line, as in the sources after YAML's own folding.
    body = yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    fresh = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != fresh:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(fresh, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
