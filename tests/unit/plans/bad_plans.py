"""Plan files that must be refused, each with the one located problem it must produce.

Shared by the parser tests and the `okrflow apply` process test."""

from __future__ import annotations

from dataclasses import dataclass

from okrflow.plans.parse import MAX_FILE_BYTES, MAX_KEY_RESULTS, MAX_OBJECTIVES, MAX_TITLE_CHARS

HEAD = "shop: salone-bella\ntimezone: UTC\nobjectives:\n"


def objective(i: int, key_results: int = 1, title: str = "More clients") -> str:
    text = (
        f"  - key: o{i}\n"
        f"    title: {title}\n"
        "    owner: marketing\n"
        "    period: {start: 2026-01-01, end: 2026-06-30}\n"
        "    key_results:\n"
    )
    for j in range(key_results):
        text += f"      - {{key: k{j}, metric: {{event: customer.created, aggregate: count}}, target: 10}}\n"
    return text


VALID = HEAD + objective(0)

NO_ANCHORS = "anchors and aliases are not allowed in a plan file (write the value out)"
STANDARD_TAGS = (
    "only the standard tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed"
)

# The classic exponential entity expansion: 10 short lines, 9 ** 9 "lol"s if expanded.
BILLION_LAUGHS = "\n".join(
    [
        "shop: salone-bella",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{chr(c)}: &{chr(c)} [{','.join(['*' + chr(c - 1)] * 9)}]"
            for c in range(ord("b"), ord("i") + 1)
        ),
    ]
)


@dataclass(frozen=True)
class Bad:
    name: str
    content: bytes
    expected: str  # the one problem, with FILE as the file's name

    def problem(self, filename: str) -> str:
        return self.expected.replace("FILE", filename)


BAD = [
    Bad(
        "infinite-target",
        VALID.replace("target: 10}", "target: .inf}").encode(),
        "FILE:9: objectives[0].key_results[0].target: not a finite number",
    ),
    Bad(
        "nan-healthy-band",
        (
            VALID + "kpis:\n  - {key: q, metric: {event: order.placed, aggregate: count}, "
            "window: 7d, healthy: {above: .nan}}\n"
        ).encode(),
        "FILE:11: kpis[0].healthy.above: not a finite number",
    ),
    Bad(
        "duplicate-key",
        (
            VALID.replace("    owner: marketing\n", "    owner: marketing\n    title: Again\n")
        ).encode(),
        "FILE:7: objectives[0].title: duplicate key 'title' (first at line 5)",
    ),
    Bad(
        "duplicate-top-level-key",
        (VALID + "shop: another-shop\n").encode(),
        "FILE:10: shop: duplicate key 'shop' (first at line 1)",
    ),
    Bad("billion-laughs", BILLION_LAUGHS.encode(), f"FILE:2: a: anchor &a: {NO_ANCHORS}"),
    Bad(
        "recursive-alias",
        (HEAD + "  - &o {key: o, parent: o, sub: *o}\n").encode(),
        f"FILE:4: objectives[0]: anchor &o: {NO_ANCHORS}",
    ),
    Bad(
        "alias-of-nothing",
        (VALID + "timezone2: *tz\n").encode(),
        f"FILE:10: timezone2: alias *tz: {NO_ANCHORS}",
    ),
    Bad(
        "python-tag",
        VALID.replace("timezone: UTC", "timezone: !!python/name:os.system").encode(),
        f"FILE:2: timezone: unknown tag !!python/name:os.system: {STANDARD_TAGS}",
    ),
    Bad(
        "python-object-tag",
        (VALID + 'x: !!python/object/apply:os.system ["true"]\n').encode(),
        f"FILE:10: x: unknown tag !!python/object/apply:os.system: {STANDARD_TAGS}",
    ),
    Bad(
        "local-tag",
        VALID.replace("title: More clients", "title: !foo More clients").encode(),
        f"FILE:5: objectives[0].title: unknown tag !foo: {STANDARD_TAGS}",
    ),
    Bad(
        "not-utf-8",
        VALID.replace("More clients", "Pi\xf9 clienti").encode("latin-1"),
        "FILE:5: not UTF-8 text: byte 0xf9 at column 14",
    ),
    Bad(
        "too-large",
        (VALID + "#" * MAX_FILE_BYTES + "\n").encode(),
        f"FILE:1: larger than {MAX_FILE_BYTES / 2**20:g} MiB, the limit of a plan file",
    ),
    Bad(
        "title-too-long",
        (HEAD + objective(0, title="x" * (MAX_TITLE_CHARS + 1))).encode(),
        f"FILE:5: objectives[0].title: {MAX_TITLE_CHARS + 1} characters: a title holds at most {MAX_TITLE_CHARS}",
    ),
    Bad(
        "key-result-title-too-long",
        VALID.replace("{key: k0,", f"{{key: k0, title: {'x' * (MAX_TITLE_CHARS + 1)},").encode(),
        f"FILE:9: objectives[0].key_results[0].title: {MAX_TITLE_CHARS + 1} characters: a title holds at most {MAX_TITLE_CHARS}",
    ),
    Bad(
        "too-many-objectives",
        (HEAD + "".join(objective(i) for i in range(MAX_OBJECTIVES + 50))).encode(),
        f"FILE:{4 + 6 * MAX_OBJECTIVES}: objectives[{MAX_OBJECTIVES}]: over the limit: a plan file holds at most {MAX_OBJECTIVES} objectives",
    ),
    Bad(
        "too-many-key-results",
        (HEAD + objective(0) + objective(1, key_results=MAX_KEY_RESULTS + 10)).encode(),
        f"FILE:{4 + 6 + 5 + MAX_KEY_RESULTS}: objectives[1].key_results[{MAX_KEY_RESULTS}]: over the limit: an objective has at most {MAX_KEY_RESULTS} key results",
    ),
    Bad(
        "two-documents",
        (VALID + "---\n" + VALID).encode(),
        "FILE:10: not valid YAML: expected a single document in the stream, but found another document",
    ),
]
