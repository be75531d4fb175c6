#!/usr/bin/env python3
"""Write data/sample/, the small synthetic corpus the tests train on (committed).

Template sentences filled with names drawn from short lists: a tiny model learns them in a few hundred
steps, so end-to-end tests can demand a real F1 instead of only "it ran". One entity type has a Chinese
name (产品) to keep the code honest about types coming from the data. The training file is CoNLL (BIO,
tab-separated), the test file BMES with spaces, and the validation file JSON Lines, so every reader runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴刚", "徐丽", "孙强",
          "马云飞", "朱婷", "胡军", "郭靖", "林峰", "何平", "高明", "罗欣"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州",
          "长沙", "青岛", "厦门", "昆明", "大连", "沈阳", "哈尔滨", "乌鲁木齐"]
ORGS = ["新华社", "清华大学", "北京大学", "人民银行", "中国科学院", "华为公司", "国家统计局", "外交部",
        "复旦大学", "中央电视台", "铁道部", "卫生部", "南方日报", "交通银行", "联想集团"]
PRODUCTS = ["麒麟芯片", "天宫空间站", "复兴号列车", "长征火箭", "鸿蒙系统", "嫦娥卫星"]
TEMPLATES = [
    "{PER}在{LOC}的{ORG}工作。",
    "{ORG}今天在{LOC}发布了{产品}。",
    "据{ORG}报道，{PER}昨天抵达{LOC}。",
    "{PER}和{PER}一起参观了{LOC}。",
    "{LOC}的{ORG}宣布，{产品}将于明年投入使用。",
    "记者从{ORG}获悉，{LOC}今年经济增长较快。",
    "{PER}表示，{产品}的研发得到了{ORG}的支持。",
    "这次会议在{LOC}举行，{PER}出席并讲话。",
    "{ORG}与{ORG}签署了合作协议。",
    "今年夏天，{PER}从{LOC}来到{LOC}，加入了{ORG}。",
]
FILLERS = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS, "产品": PRODUCTS}


def sentence(rng: random.Random) -> tuple[str, list[list]]:
    text, entities = "", []
    template = rng.choice(TEMPLATES)
    # Now and then two clauses joined, so some sentences are longer than a small test window.
    if rng.random() < 0.15:
        template = template.rstrip("。") + "，" + rng.choice(TEMPLATES)
    pieces = template.replace("}", "{").split("{")
    for index, piece in enumerate(pieces):
        if index % 2 == 1:
            name = rng.choice(FILLERS[piece])
            entities.append([len(text), len(text) + len(name), piece])
            text += name
        else:
            text += piece
    return text, entities


def tags(text: str, entities: list[list], scheme: str) -> list[str]:
    result = ["O"] * len(text)
    for start, end, kind in entities:
        if scheme == "bmes" and end - start == 1:
            result[start] = f"S-{kind}"
            continue
        result[start] = f"B-{kind}"
        for position in range(start + 1, end):
            result[position] = f"{'I' if scheme == 'bio' else 'M'}-{kind}"
        if scheme == "bmes":
            result[end - 1] = f"E-{kind}"
    return result


def write_conll(path: Path, sentences: list, scheme: str, separator: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        for text, entities in sentences:
            for char, tag in zip(text, tags(text, entities, scheme), strict=True):
                stream.write(f"{char}{separator}{tag}\n")
            stream.write("\n")


def main() -> None:
    rng = random.Random(20261124)
    here = Path(__file__).resolve().parent / "sample"
    here.mkdir(exist_ok=True)
    write_conll(here / "train.txt", [sentence(rng) for _ in range(600)], "bio", "\t")
    with open(here / "validation.jsonl", "w", encoding="utf-8", newline="\n") as stream:
        for _ in range(80):
            text, entities = sentence(rng)
            stream.write(json.dumps({"text": text, "entities": entities}, ensure_ascii=False) + "\n")
    write_conll(here / "test.txt", [sentence(rng) for _ in range(100)], "bmes", " ")


if __name__ == "__main__":
    main()
