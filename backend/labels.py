"""The parts of a Label Studio label config this backend needs: one Image and one Choices on it."""
from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree


@dataclass(frozen=True)
class LabelSpec:
    """``<Choices name=from_name toName=to_name>`` over ``<Image name=to_name value="$image_key">``."""

    from_name: str
    to_name: str
    image_key: str
    choices: tuple[str, ...]

    def result(self, class_index: int) -> list[dict]:
        """A Label Studio prediction result choosing class ``class_index``."""
        return [{"from_name": self.from_name, "to_name": self.to_name, "type": "choices",
                 "value": {"choices": [self.choices[class_index]]}}]

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
        choices = tuple(c.get("value") for c in el.iter("Choice") if c.get("value") is not None)
        if len(choices) < 2:
            raise ValueError(f"<Choices name=\"{el.get('name')}\"> needs at least two <Choice value=...>")
        if len(set(choices)) != len(choices):
            raise ValueError(f"<Choices name=\"{el.get('name')}\"> has duplicate choice values")
        if not images[to_name]:
            raise ValueError(f"<Image name=\"{to_name}\"> has no value=\"$field\"")
        return LabelSpec(from_name=el.get("name", ""), to_name=to_name,
                         image_key=images[to_name], choices=choices)
    raise ValueError("label config has no <Choices toName=...> pointing at an <Image>; "
                     "this backend ranks image classification labels")
