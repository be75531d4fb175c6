"""A Label Studio project's labelling config, read for what the model fills in: which ``<Labels>`` control
labels which ``<Text>`` object, the task data key that text comes from, and which label each entity type
becomes.

The config is Label Studio's XML, for example its stock named-entity template::

    <View>
      <Labels name="label" toName="text">
        <Label value="PER"/><Label value="ORG"/><Label value="LOC"/>
      </Labels>
      <Text name="text" value="$text"/>
    </View>

A region the model predicts is written under the control's ``name`` (``from_name``), for the object's
``name`` (``to_name``), and the text is the task's ``data[key]`` for ``value="$key"``. A ``<Label>`` with an
``alias`` is saved by Label Studio under the alias, so that is the name an entity type is matched against
and written as. An entity type matches the label of the same name, or the one a mapping such as
``PER=Person,ORG=Organisation`` names; a type the config has no label for is left out (and counted by the
caller).

The XML is parsed by the standard library's expat, whose entity-expansion limits (expat >= 2.4) stop the
"billion laughs" documents; configs over :data:`MAX_CONFIG_CHARS` are refused before parsing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from albert_ner.errors import AlbertNerError

#: A labelling config longer than this is not a config anyone wrote by hand (the stock one is ~400 chars).
MAX_CONFIG_CHARS = 1_000_000


class LabelConfigError(AlbertNerError):
    """A labelling config that has no ``<Labels>`` control the model can fill in, or a bad label mapping."""


@dataclass(frozen=True)
class LabellingInterface:
    """Where in a Label Studio project the model's entities go: the ``<Labels>`` control (``from_name``),
    the ``<Text>`` object it labels (``to_name``), the task data key of that text, the labels the control
    offers, and which label each of the model's entity types is written as."""

    from_name: str
    to_name: str
    data_key: str
    labels: tuple[str, ...]
    mapping: Mapping[str, str]

    def label_for(self, entity_type: str) -> str | None:
        """The config's label for one of the model's entity types, or None when it has none."""
        label = self.mapping.get(entity_type, entity_type)
        return label if label in self.labels else None

    def text_of(self, data: Mapping[str, object]) -> str:
        """The text a task's ``data`` holds for this interface; a LabelConfigError naming the key if none."""
        value = data.get(self.data_key)
        if not isinstance(value, str):
            found = ", ".join(sorted(map(str, data))) or "none"
            raise LabelConfigError(f'the task has no text under data["{self.data_key}"] (the labelling config\'s '
                                   f'<Text name="{self.to_name}" value="${self.data_key}">); its data keys: {found}')
        return value


def stock_interface(entity_types: Iterable[str], mapping: Mapping[str, str] | None = None) -> LabellingInterface:
    """The names of Label Studio's stock named-entity template (``label``, ``text``, ``$text``), with a
    label for each of the model's entity types: what tasks are written with when no config is given."""
    mapping = dict(mapping or {})
    labels = tuple(mapping.get(entity_type, entity_type) for entity_type in entity_types)
    return LabellingInterface("label", "text", "text", labels, mapping)


def parse_label_config(config: str, mapping: Mapping[str, str] | None = None,
                       from_name: str | None = None) -> LabellingInterface:
    """The interface a labelling config offers the model: its one ``<Labels>`` control over a ``<Text>``
    object (or the one named ``from_name``). A LabelConfigError says what is missing otherwise."""
    if len(config) > MAX_CONFIG_CHARS:
        raise LabelConfigError(f"the labelling config is {len(config):,} characters long; the limit is "
                               f"{MAX_CONFIG_CHARS:,}")
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        raise LabelConfigError(f"the labelling config is not valid XML: {error}") from None
    texts = {element.get("name"): element for element in root.iter("Text") if element.get("name")}
    usable = []
    for control in root.iter("Labels"):
        targets = [name.strip() for name in (control.get("toName") or "").split(",") if name.strip() in texts]
        if control.get("name") and targets:
            usable.append((control, targets[0]))
    names = [str(control.get("name")) for control, _ in usable]
    if from_name is not None:
        usable = [(control, target) for control, target in usable if control.get("name") == from_name]
        if not usable:
            raise LabelConfigError(f'the labelling config has no <Labels name="{from_name}"> over a <Text>; '
                                   f"its <Labels> controls over a <Text>: {', '.join(names) or 'none'}")
    if not usable:
        kinds = sorted({element.tag for element in root.iter() if element.tag.endswith("Labels")})
        raise LabelConfigError(
            "the labelling config has no <Labels> control with a toName naming a <Text> object, so there is "
            "nowhere to put entities" + (f" (it has {', '.join(kinds)}, which this model does not fill in)"
                                         if kinds else "")
            + ': add <Labels name="label" toName="text"> with a <Label value="..."/> per entity type')
    if len(usable) > 1:
        raise LabelConfigError(f"the labelling config has {len(usable)} <Labels> controls over a <Text> "
                               f"({', '.join(names)}): name the one to fill in")
    control, target = usable[0]
    value = texts[target].get("value") or ""
    if texts[target].get("valueType", "text") != "text":
        raise LabelConfigError(f'<Text name="{target}"> has valueType="{texts[target].get("valueType")}": its '
                               "task field holds a URL to the text, which this model cannot fetch; import the "
                               "text itself")
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f'<Text name="{target}"> has value="{value}": expected "$key", the task data '
                               "field that holds the text")
    labels = tuple(label.get("alias") or label.get("value") or "" for label in control.iter("Label"))
    labels = tuple(label for label in labels if label)
    if not labels:
        raise LabelConfigError(f'<Labels name="{control.get("name")}"> has no <Label value="..."/> children')
    return LabellingInterface(str(control.get("name")), target, value[1:], labels, dict(mapping or {}))


def parse_label_mapping(text: str) -> dict[str, str]:
    """``"PER=Person, ORG=Organisation"`` as ``{"PER": "Person", "ORG": "Organisation"}``: the model's
    entity type on the left, the labelling config's label on the right."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        entity_type, equals, label = (side.strip() for side in item.partition("="))
        if not equals or not entity_type or not label:
            raise LabelConfigError(f"label mapping item {item!r}: expected TYPE=LABEL, as in PER=Person,ORG=Org")
        if entity_type in mapping:
            raise LabelConfigError(f"label mapping names {entity_type!r} twice")
        mapping[entity_type] = label
    return mapping
