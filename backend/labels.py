"""The parts of a Label Studio label config this project needs: one Image and one Choices on it.

One rule for every reader and writer of a config (the backend, the import script):
- a choice is what Label Studio stores in a result: the ``<Choice>``'s ``alias`` when it has
  one (Label Studio writes the alias into annotations instead of the value), else its ``value``;
- a Choices tag needs at least two choices, and no choice twice (the class index of a label
  must be unambiguous).

:func:`label_config` builds a config that :func:`parse_label_config` reads back with the same
choices in the same order; :meth:`LabelSpec.result` builds the result of an annotation or a
prediction choosing one class.

The config :func:`label_config` builds has two more controls for the reviewer (both optional in a
project's config, and ignored by the ranking):
- a confirm control, ``<Choices name="review">`` with one choice ``label is right`` (hotkey ``r``):
  ticking it is a change, so Label Studio enables *Update* and saves the annotation; its class
  choice unchanged, that save is a clean verdict;
- a ``<TextArea name="suspect_reason">`` that predictions fill with why the task is suspect (the
  spec's ``reason_name``; the reviewer's own annotation never gets it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from xml.etree import ElementTree

#: the confirm control: a one-choice Choices whose tick makes an unchanged label savable
CONFIRM_NAME = "review"
CONFIRM_CHOICE = "label is right"
CONFIRM_HOTKEY = "r"
#: the TextArea predictions write the reason a task is suspect into
REASON_NAME = "suspect_reason"
REASON_PLACEHOLDER = "why the task is suspect: on the model's prediction tab (left of yours)"


@dataclass(frozen=True)
class LabelSpec:
    """``<Choices name=from_name toName=to_name>`` over ``<Image name=to_name value="$image_key">``."""

    from_name: str
    to_name: str
    image_key: str
    choices: tuple[str, ...]
    #: name of the config's ``<TextArea name="suspect_reason">`` on the image, None without one
    reason_name: str | None = None

    def index(self, label: str) -> int:
        """The class index of the choice ``label``; ``ValueError`` when it is not a choice."""
        try:
            return self.choices.index(label)
        except ValueError:
            raise ValueError(f"{label!r} is not one of the choices {list(self.choices)}") from None

    def missing(self, labels: Sequence[str]) -> list[str]:
        """The ``labels`` that are not choices, in their order."""
        known = set(self.choices)
        return [label for label in labels if label not in known]

    def result(self, class_index: int) -> list[dict]:
        """A Label Studio annotation or prediction result choosing class ``class_index``."""
        return [{"from_name": self.from_name, "to_name": self.to_name, "type": "choices",
                 "value": {"choices": [self.choices[class_index]]}}]

    def reason_result(self, text: str) -> list[dict]:
        """The prediction result writing ``text`` into the reason TextArea (empty without one)."""
        if self.reason_name is None:
            return []
        return [{"from_name": self.reason_name, "to_name": self.to_name, "type": "textarea",
                 "value": {"text": [text]}}]

    def label_of(self, result: list | None) -> str | None:
        """The chosen value in an annotation ``result`` for this Choices tag, or None."""
        for item in result or []:
            if not isinstance(item, dict):
                continue
            if item.get("from_name") != self.from_name or item.get("type") != "choices":
                continue
            chosen = (item.get("value") or {}).get("choices") or []
            if chosen:
                return str(chosen[0])
        return None

    def image_url(self, task: dict) -> str | None:
        data = task.get("data") if isinstance(task, dict) else None
        url = data.get(self.image_key) if isinstance(data, dict) else None
        return url if isinstance(url, str) and url else None


def parse_label_config(xml: str) -> LabelSpec:
    """Find the first Choices tag whose ``toName`` is an Image tag.

    Raises ``ValueError`` with a readable message when the config is not XML, has no Image, no
    Choices on an Image, or fewer than two choices.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise ValueError("label config is empty")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ValueError(f"label config is not valid XML: {exc}") from None
    images = {}
    for el in root.iter():
        if el.tag == "Image" and el.get("name"):
            value = el.get("value", "")
            images[el.get("name")] = value[1:] if value.startswith("$") else value
    if not images:
        raise ValueError("label config has no <Image name=... value=\"$...\"> tag")
    for el in root.iter():
        if el.tag != "Choices":
            continue
        to_name = el.get("toName", "")
        if to_name not in images:
            continue
        choices = tuple(_choice(c) for c in el.iter("Choice") if _choice(c) is not None)
        _check_choices(choices, where=f"<Choices name=\"{el.get('name')}\">")
        if not images[to_name]:
            raise ValueError(f"<Image name=\"{to_name}\"> has no value=\"$field\"")
        reason = next((t.get("name") for t in root.iter("TextArea")
                       if t.get("name") == REASON_NAME and t.get("toName") == to_name), None)
        return LabelSpec(from_name=el.get("name", ""), to_name=to_name,
                         image_key=images[to_name], choices=choices, reason_name=reason)
    raise ValueError("label config has no <Choices toName=...> pointing at an <Image>; "
                     "this backend ranks image classification labels")


def label_config(choices: Sequence[str], *, confirm: bool = True, reason: bool = True) -> str:
    """An Image + single Choices label config, one choice per entry of ``choices`` in that order,
    followed by the confirm control (``confirm``) and the reason TextArea (``reason``).

    Its spec: ``from_name="label"``, ``to_name="image"``, ``image_key="image"``. A choice that is
    a single digit has that digit as its hotkey (Label Studio would otherwise number the choices
    1, 2, ... from the first, so that 1 picks "0"); Label Studio gives the others keys still
    free. ``ValueError`` for fewer than two choices, a repeated or an empty one.
    """
    choices = tuple(choices)
    if not all(isinstance(c, str) and c for c in choices):
        raise ValueError(f"choices must be non-empty strings, got {list(choices)}")
    _check_choices(choices, where="a label config")
    view = ElementTree.Element("View")
    ElementTree.SubElement(view, "Image", name="image", value="$image", zoom="true", maxWidth="360px")
    group = ElementTree.SubElement(view, "Choices", name="label", toName="image",
                                   choice="single-radio", showInline="true")
    for choice in choices:
        digit = len(choice) == 1 and choice in "0123456789"
        ElementTree.SubElement(group, "Choice", value=choice, **({"hotkey": choice} if digit else {}))
    if confirm:
        review = ElementTree.SubElement(view, "Choices", name=CONFIRM_NAME, toName="image",
                                        choice="multiple", showInline="true")
        ElementTree.SubElement(review, "Choice", value=CONFIRM_CHOICE, hotkey=CONFIRM_HOTKEY)
    if reason:
        ElementTree.SubElement(view, "TextArea", name=REASON_NAME, toName="image", rows="1",
                               maxSubmissions="1", placeholder=REASON_PLACEHOLDER)
    ElementTree.indent(view)
    return ElementTree.tostring(view, encoding="unicode")


def _choice(el: ElementTree.Element) -> str | None:
    """What Label Studio stores in a result for this ``<Choice>``: its alias, else its value."""
    return el.get("alias") or el.get("value")


def _check_choices(choices: tuple, *, where: str) -> None:
    if len(choices) < 2:
        raise ValueError(f"{where} needs at least two choices, got {list(choices)}")
    repeated = sorted({c for c in choices if choices.count(c) > 1})
    if repeated:
        raise ValueError(f"{where} has repeated choices {repeated}")
