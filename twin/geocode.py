"""Addresses to places: a citizen's street address placed on the district's own roads.

A report that names a street instead of giving coordinates (Open311's ``address_string``) is
placed here against the street names of the road data: in Chinese (``小河路``) or in pinyin or
English (``Xiaohe Road``, ``xiaohe lu``, ``XIAOHELU``). Names are compared whole, after
normalising case, spaces, full-width characters, bracketed notes (``香积寺路（在建）`` is
``香积寺路``) and the street words: 路 Road/Rd/Lu, 街 Street/St/Jie, 巷 Lane/Xiang, 弄
Lane/Alley/Nong/Long, 桥 Bridge/Qiao, 隧道 Tunnel, 北/南/东/西 North/South/East/West, 支 Branch.
Pinyin comes from a table of the characters of the district's street names (:data:`PINYIN`),
or from aliases a caller gives (e.g. OSM ``name:en``, which Xiaohe's road extract lacks); a name
with a character the table lacks is found in Chinese only.

What is understood, besides a bare street name:

* a house number, ``小河路123号``, ``123 Xiaohe Road``, ``No. 5 Xiaohe Rd``: the road data
  has no address points, so the place is the street's middle and the number is kept;
* a junction, ``小河路与登云路交叉口``, ``小河路登云路口``, ``Xiaohe Road & Dengyun Road``,
  ``corner of Xiaohe Rd and Dengyun Rd``: the junction where the two streets meet;
* a street named without its street word (``小河``, ``Dengyun``) when one street alone fits;
* the city and district around it (``杭州市拱墅区小河路``, ``Xiaohe Road, Gongshu District,
  Hangzhou``).

A street's middle is the point of its segments inside the district nearest to their
length-weighted centre; a junction is the centre of the junction nodes the two streets share
(the carriageways of a dual road meet in several nodes a few tens of metres apart), or the
middle of their closest approach where they pass within :data:`JUNCTION_GAP_M` without a
shared node.

Anything else is a :class:`~twin.errors.ValidationError` naming ``address_string``: an
unknown street (with the nearest spellings the district has), a name several streets fit
(listing them), two streets that do not meet or meet in several places, a place outside the
district. Pure domain code: coordinates in the district's local plane (metres).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import MultiLineString

from twin.errors import ValidationError

if TYPE_CHECKING:
    from twin.district import District
    from twin.geo import RoadNetwork

#: The field every error names (Open311's).
FIELD = "address_string"
#: Longest address accepted, characters.
MAX_ADDRESS_CHARS = 300
#: Junction nodes of two streets further apart than this are separate junctions, metres.
JUNCTION_SPREAD_M = 150.0
#: Two streets without a shared node still meet if they pass this close, metres.
JUNCTION_GAP_M = 30.0
#: Most candidates an error lists.
MAX_CANDIDATES = 6

# Pinyin (no tones) of the characters of the district's street names; a character with two
# readings in place names lists both (弄 long/nong, 浒 hu/xu, 莎 sha/suo).
_PINYIN_TEXT = """
一yi 二er 三san 四si 五wu 六liu 七qi 八ba 九jiu 十shi 上shang 下xia 东dong 南nan 西xi 北bei 中zhong
严yan 丰feng 丽li 义yi 乐le 云yun 亭ting 亮liang 仁ren 仓cang 伍wu 余yu 信xin 俭jian 儿er 兔tu
兜dou 兰lan 关guan 兴xing 军jun 冠guan 勤qin 华hua 双shuang 古gu 台tai 合he 后hou 和he 哑ya
嘉jia 园yuan 固gu 在zai 堂tang 塘tang 墅shu 大da 娑suo 婆po 宁ning 安an 定ding 宝bao 家jia
宸chen 寺si 小xiao 山shan 岗gang 岚lan 州zhou 工gong 巴ba 巷xiang 带dai 干gan 庆qing 庭ting
康kang 建jian 弄long/nong 彩cai 征zheng 德de 惠hui 支zhi 教jiao 文wen 新xin 昌chang 景jing
月yue 杭hang 架jia 桥qiao 横heng 正zheng 水shui 永yong 江jiang 汤tang 河he 波bo 浒hu/xu
浜bang 海hai 润run 涨zhang 温wen 港gang 湖hu 湾wan 溪xi 潭tan 热re 玉yu 珠zhu 申shen 电dian
登deng 益yi 盛sheng 睦mu 短duan 石shi 祥xiang 秀xiu 秉bing 积ji 绍shao 美mei 联lian 舟zhou
花hua 苑yuan 茶cha 草cao 莎sha/suo 莫mo 萍ping 营ying 董dong 蚕can 行xing 街jie 衙ya 衢qu
见jian 贞zhen 贾jia 赵zhao 路lu 运yun 远yuan 通tong 道dao 郡jun 里li 金jin 钟zhong 锦jin
长chang 隐yin 隧sui 霞xia 青qing 风feng 香xiang 高gao 鸿hong 麟lin
"""
#: Readings of each character (the table above).
PINYIN: Mapping[str, tuple[str, ...]] = {
    item[0]: tuple(item[1:].split("/")) for item in _PINYIN_TEXT.split()
}

# Street words at the end of a name (longest first): what a name without them is called.
_SUFFIXES = ("高架路", "隧道", "大道", "路", "街", "巷", "弄", "桥", "里")
# English and pinyin words → the pinyin they stand for (each alternative tried).
_WORDS: Mapping[str, tuple[str, ...]] = {
    "road": ("lu",), "rd": ("lu",), "street": ("jie",), "st": ("jie",), "lane": ("xiang", "long", "nong"),
    "ln": ("xiang", "long", "nong"), "alley": ("long", "nong", "xiang"), "bridge": ("qiao",),
    "tunnel": ("suidao",), "avenue": ("dadao",), "ave": ("dadao",), "elevated": ("gaojia",), "viaduct": ("gaojialu",),
    "branch": ("zhi",), "north": ("bei",), "south": ("nan",), "east": ("dong",), "west": ("xi",),
    "middle": ("zhong",), "central": ("zhong",), "first": ("yi",), "second": ("er",), "third": ("san",),
    "1": ("1", "yi"), "2": ("2", "er"), "3": ("3", "san"),
}
_DIRECTIONS = frozenset({"north", "south", "east", "west"})
_STREET_WORDS = frozenset({"road", "rd", "street", "st", "lane", "ln", "alley", "bridge", "tunnel", "avenue", "ave",
                           "lu", "jie", "xiang", "nong", "long", "qiao"})
_ORDINAL = re.compile(r"\b([1-3])(?:st|nd|rd)\b")
_CJK = re.compile(r"[\u3400-\u9fff]")
_NOTE = re.compile(r"\([^()]*\)")
# Separators of a junction's two streets.
_JOIN = re.compile(r"\s*(?:与|和|跟|及|、|/|&|×|＆|\+|@|\band\b|\bat\b|\bx\b)\s*")
_JUNCTION_WORDS_ZH = re.compile(r"(?:交叉路口|十字路口|交叉口|交汇处|交界处|交口|路口|口)$")
_JUNCTION_WORDS_EN = re.compile(r"^(?:the\s+)?(?:corner|intersection|junction|crossing|crossroads?)\s+of\s+"
                                r"|\s+(?:intersection|junction|crossing|crossroads?)$")
_HOUSE_ZH = re.compile(r"^(?P<street>.+?)(?P<no>\d+(?:[-－]\d+)?)\s*号.*$")
_HOUSE_EN_FIRST = re.compile(r"^(?:no\.?\s*|#\s*)?(?P<no>\d+[a-z]?(?:-\d+)?)\s+(?P<street>.*[a-z].*)$")
_HOUSE_EN_LAST = re.compile(r"^(?P<street>.*[a-z].*?)\s+(?:no\.?\s*|#\s*)?(?P<no>\d+[a-z]?(?:-\d+)?)$")
_LANE_FIRST = re.compile(r"^(?:lane|alley|nong|long)\s*(?P<no>\d+)\s*,?\s+(?P<street>[^,;]+)")
_ADMIN_ZH = re.compile(r"^(?:中国)?(?:浙江省?)?(?:杭州市?)?(?:[\u4e00-\u9fff]{2,3}区)?(?:[\u4e00-\u9fff]{2,3}街道)?")
_ADMIN_EN = re.compile(r"^(?:p\.?\s*r\.?\s*c\.?|china|zhejiang(?: province)?|hangzhou(?: city)?|\d{6}|"
                       r"[a-z]+ (?:district|subdistrict|sub-district|county|province|city))$")


@dataclass(frozen=True)
class Street:
    """One named street of the district: every road segment of that name.

    Args:
        name: The name as the road data spells it (a bracketed note dropped when another
            spelling has none).
        segments: Indices of its segments in the road network.
        inside: Those of them inside the district (where a report on it is placed).
        romanised: Its pinyin, e.g. ``Xiaohe Lu`` (empty if the table lacks a character).
    """

    name: str
    segments: tuple[int, ...]
    inside: tuple[int, ...]
    romanised: str = ""


@dataclass(frozen=True)
class Placement:
    """Where an address was placed.

    Args:
        x: Metres east in the district's local plane.
        y: Metres north.
        streets: The street, or the two streets of a junction.
        house_number: The house number given with the street, if any (not used to place it:
            the road data has no address points).
    """

    x: float
    y: float
    streets: tuple[str, ...]
    house_number: str | None = None

    @property
    def is_junction(self) -> bool:
        """Whether it is the junction of two streets."""
        return len(self.streets) == 2

    def describe(self) -> str:
        """``小河路 (middle)``, ``小河路 × 登云路``."""
        if self.is_junction:
            return " × ".join(self.streets)
        number = f", house number {self.house_number} not mapped" if self.house_number else ""
        return f"{self.streets[0]} (middle of the street{number})"


class _Unplaced(Exception):
    """An address part that names no street (the error's reason)."""


class Gazetteer:
    """The district's streets by name, and the places addresses name on them.

    Build it with :func:`gazetteer_from_district` or :func:`gazetteer_from_roads`.

    Args:
        roads: The road network.
        streets: The streets, by display name.
        aliases: More names of streets (pinyin or English spellings: OSM ``name:en``), by
            display name.
        contains: Whether a point of the plane belongs to the district (``None``: all do).
        title: The district's name, for messages.
    """

    def __init__(self, roads: RoadNetwork, streets: Mapping[str, Street], *,
                 aliases: Mapping[str, Iterable[str]] | None = None,
                 contains: Callable[[float, float], bool] | None = None, title: str = "the district") -> None:
        self.roads = roads
        self.streets = dict(sorted(streets.items()))
        self.contains = contains
        self.title = title
        self._zh: dict[str, set[str]] = {}
        self._zh_base: dict[str, set[str]] = {}
        self._py: dict[str, set[str]] = {}
        self._py_base: dict[str, set[str]] = {}
        self._nodes = {name: frozenset(int(n) for i in s.segments for n in (roads.segments[i].u, roads.segments[i].v))
                       for name, s in self.streets.items()}
        self._middles: dict[str, tuple[float, float]] = {}
        main = max(self.streets.values(), key=lambda s: (len(s.inside), s.name), default=None)
        self._example = "" if main is None else (f"{main.name}, {main.romanised}" if main.romanised else main.name)
        for name in self.streets:
            key = zh_key(name)
            self._zh.setdefault(key, set()).add(name)
            base = _strip_suffix(key)
            if base != key:
                self._zh_base.setdefault(base, set()).add(name)
            for p in pinyin_keys(key):
                self._py.setdefault(p, set()).add(name)
            if base != key:
                for p in pinyin_keys(base):
                    self._py_base.setdefault(p, set()).add(name)
        for name, names in (aliases or {}).items():
            if name not in self.streets:
                continue
            for alias in names:
                for k in latin_keys(clean(alias)):
                    self._py.setdefault(k, set()).add(name)

    def __len__(self) -> int:
        return len(self.streets)

    def __contains__(self, name: object) -> bool:
        return name in self.streets

    # --- lookups ------------------------------------------------------------------------------------
    def lookup(self, name: str) -> tuple[str, ...]:
        """The streets a name (without house number or junction) fits, sorted: one, several
        (ambiguous) or none."""
        text = clean(name)
        if _CJK.search(text):
            key = zh_key(text)
            found = self._zh.get(key) or self._zh_base.get(key) or set()
            if not found:
                stripped = zh_key(_ADMIN_ZH.sub("", key))
                if stripped and stripped != key:
                    found = self._zh.get(stripped) or self._zh_base.get(stripped) or set()
        else:
            keys = latin_keys(text)
            found = set().union(*(self._py.get(k, set()) for k in keys)) if keys else set()
            if not found and keys:
                found = set().union(*(self._py_base.get(k, set()) for k in keys))
        return tuple(sorted(found))

    def suggestions(self, name: str) -> tuple[str, ...]:
        """Streets whose name contains what ``name`` names (its street word left out), for an
        error's "did you mean"."""
        text = clean(name)
        out: set[str] = set()
        if _CJK.search(text):
            core = _strip_suffix(zh_key(_ADMIN_ZH.sub("", zh_key(text)) or text))
            if core:
                out = {n for n in self.streets if core in zh_key(n)}
        else:
            cores = {k for k in latin_keys(text, street_word=False) if len(k) >= 3}
            out = {n for n, s in self.streets.items()
                   if any(c in p for c in cores for p in pinyin_keys(zh_key(n)))}
        return tuple(sorted(out, key=lambda n: (len(n), n)))[:MAX_CANDIDATES]

    def label(self, name: str) -> str:
        """``小河路 (Xiaohe Lu)``."""
        s = self.streets[name]
        return f"{name} ({s.romanised})" if s.romanised else name

    # --- places -------------------------------------------------------------------------------------
    def place(self, address: str) -> Placement:
        """Place an address: a street (its middle), a street with a house number (the street's
        middle), or the junction of two streets.

        Raises:
            ValidationError: naming ``address_string``: empty or too long, no street of the
                district fits, several do, the streets do not meet (or meet in several
                places), or the place lies outside the district.
        """
        if not isinstance(address, str) or not address.strip():
            raise ValidationError(FIELD, "must name a street of the district")
        if len(address) > MAX_ADDRESS_CHARS:
            raise ValidationError(FIELD, f"must be at most {MAX_ADDRESS_CHARS} characters")
        text = _LANE_FIRST.sub(r"\g<street> \g<no> lane", clean(address))  # Lane 605, Shangtang Road: 上塘路605弄
        parts = [p.strip() for p in re.split(r"[,;，；。]", text) if p.strip()]
        parts = [p for p in parts if not _ADMIN_EN.match(p)] or parts
        merged: list[str] = []
        for p in parts:  # "No. 5, Xiaohe Road": the number belongs to the street after it
            if merged and re.fullmatch(r"(?:no\.?\s*|#\s*)?\d+[a-z]?", merged[-1]):
                merged[-1] = f"{merged[-1]} {p}"
            else:
                merged.append(p)
        if not merged:
            raise ValidationError(FIELD, f"'{address.strip()}' names no street")
        first: _Unplaced | None = None
        for part in merged:
            try:
                return self._place_part(part, address.strip())
            except _Unplaced as exc:
                first = first or exc
        assert first is not None
        raise ValidationError(FIELD, f"'{address.strip()}': {first}")

    def _place_part(self, text: str, original: str) -> Placement:
        names = self.lookup(text)
        if len(names) == 1:
            return self._at_middle(names[0], None)
        if len(names) > 1:
            raise self._ambiguous(original, names)
        street, number = _house_number(text)
        if street is not None:
            names = self.lookup(street)
            if len(names) == 1:
                return self._at_middle(names[0], number)
            if len(names) > 1:
                raise self._ambiguous(original, names)
        junction = self._junction(text, original)
        if junction is not None:
            return junction
        cands = self.suggestions(street or text)
        hint = f" (did you mean {', '.join(self.label(n) for n in cands)}?)" if cands else ""
        raise _Unplaced(f"no street of {self.title} has this name{hint}. Name a street in Chinese or pinyin "
                        f"({self._example}), optionally with a house number, or a junction ('X与Y交叉口', "
                        "'X & Y'); or send lat/long")

    def _ambiguous(self, text: str, names: Sequence[str]) -> ValidationError:
        shown = ", ".join(self.label(n) for n in names[:MAX_CANDIDATES])
        more = f" and {len(names) - MAX_CANDIDATES} more" if len(names) > MAX_CANDIDATES else ""
        return ValidationError(FIELD, f"'{text}' fits several streets: {shown}{more}; give the whole name")

    def _junction(self, text: str, original: str) -> Placement | None:
        """The junction two streets of ``text`` name, or ``None`` if it names no two streets."""
        core = _JUNCTION_WORDS_EN.sub("", _JUNCTION_WORDS_ZH.sub("", text)).strip()
        splits: list[tuple[str, str]] = [(core[:m.start()], core[m.end():]) for m in _JOIN.finditer(core)]
        if _CJK.search(core):  # 小河路登云路口: two names back to back
            splits += [(core[:i], core[i:]) for i in range(2, len(core) - 1) if core[i - 1] in "路街巷弄桥"]
        pairs: dict[tuple[str, str], None] = {}
        unclear: tuple[str, ...] = ()
        for left, right in splits:
            lefts = self.lookup(left.strip()) if left.strip() else ()
            rights = self.lookup(right.strip()) if right.strip() else ()
            if len(lefts) == 1 and len(rights) == 1:
                pairs[(lefts[0], rights[0])] = None
            elif lefts and rights:
                unclear = unclear or (lefts if len(lefts) > 1 else rights)
        if not pairs:
            if unclear:
                raise self._ambiguous(original, unclear)
            return None
        if len(pairs) > 1:
            shown = "; ".join(f"{a} × {b}" for a, b in pairs)
            raise ValidationError(FIELD, f"'{original}' can be read as several junctions: {shown}")
        a, b = next(iter(pairs))
        if a == b:
            raise ValidationError(FIELD, f"'{original}' names {a} twice; a junction needs two streets")
        return self._at_junction(a, b)

    def _at_middle(self, name: str, number: str | None) -> Placement:
        xy = self._middles.get(name)
        if xy is None:
            s = self.streets[name]
            idx = [i for i in s.inside if self.contains is None or self.contains(*self.roads.midpoints[i])]
            if not idx:
                raise ValidationError(FIELD, f"{self.label(name)} lies outside {self.title}")
            lengths = self.roads.lengths_m[idx]
            mids = self.roads.midpoints[idx]
            centre = (mids * lengths[:, None]).sum(axis=0) / max(float(lengths.sum()), 1e-9)
            best = int(np.argmin(np.hypot(*(mids - centre).T)))
            xy = self._middles[name] = (float(mids[best, 0]), float(mids[best, 1]))
        return Placement(xy[0], xy[1], (name,), number)

    def _at_junction(self, a: str, b: str) -> Placement:
        shared = sorted(self._nodes[a] & self._nodes[b])
        if shared:
            xy = self.roads.node_xy[shared]
            groups = _clusters(xy, JUNCTION_SPREAD_M)
            if len(groups) > 1:
                where = "; ".join(self._lonlat_text(*xy[g].mean(axis=0)) for g in groups[:MAX_CANDIDATES])
                raise ValidationError(FIELD, f"{a} and {b} meet in {len(groups)} places ({where}); "
                                             "give a house number or lat/long instead")
            x, y = (float(v) for v in xy.mean(axis=0))
        else:
            la = MultiLineString([self.roads.segments[i].line for i in self.streets[a].segments])
            lb = MultiLineString([self.roads.segments[i].line for i in self.streets[b].segments])
            if float(la.distance(lb)) > JUNCTION_GAP_M:
                raise ValidationError(FIELD, f"{self.label(a)} and {self.label(b)} do not meet")
            line = shapely.shortest_line(la, lb)
            mid = line.interpolate(0.5, normalized=True)
            x, y = float(mid.x), float(mid.y)
        if self.contains is not None and not self.contains(x, y):
            raise ValidationError(FIELD, f"the junction of {a} and {b} lies outside {self.title}")
        return Placement(x, y, (a, b))

    def _lonlat_text(self, x: float, y: float) -> str:
        lon, lat = self.roads.projection.to_lonlat(x, y)
        return f"{float(lon):.5f}, {float(lat):.5f}"


# --- normalising --------------------------------------------------------------------------------------
def clean(text: str) -> str:
    """Full-width characters to their ASCII forms (NFKC), lower case, runs of spaces as one,
    typographic quotes and dots dropped."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = re.sub(r"[\u2018\u2019'`\u00b7\u30fb]", "", t)
    return re.sub(r"\s+", " ", t).strip(" .")


def zh_key(name: str) -> str:
    """A Chinese name as compared: :func:`clean`, without spaces and bracketed notes."""
    return re.sub(r"\s+", "", _NOTE.sub("", clean(name)))


def _strip_suffix(key: str) -> str:
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def pinyin_keys(key: str, *, limit: int = 16) -> frozenset[str]:
    """Every pinyin spelling of a Chinese name key, syllables run together (``xiaohelu``);
    empty if a character is not in :data:`PINYIN`."""
    choices: list[tuple[str, ...]] = []
    for ch in key:
        if ch.isascii() and ch.isalnum():
            choices.append((ch,))
        elif ch in PINYIN:
            choices.append(PINYIN[ch])
        else:
            return frozenset()
    return frozenset("".join(c) for c in itertools.islice(itertools.product(*choices), limit))


def latin_keys(text: str, *, street_word: bool = True, limit: int = 64) -> frozenset[str]:
    """The pinyin spellings a Latin-letter name may stand for (``Xiaohe Road`` → ``xiaohelu``):
    English street words, directions and ordinals as their pinyin, run together. Without
    ``street_word`` a trailing street word is left out (for suggestions)."""
    t = _ORDINAL.sub(lambda m: m.group(1), clean(text))
    tokens = re.findall(r"[a-z]+|\d+", t)
    if len(tokens) > 2 and tokens[0] in _DIRECTIONS and tokens[-1] in _STREET_WORDS:
        tokens = [*tokens[1:-1], tokens[0], tokens[-1]]  # North Hushu Road → Hushu North Road
    if not street_word and len(tokens) > 1 and tokens[-1] in _STREET_WORDS:
        tokens = tokens[:-1]
    if not tokens:
        return frozenset()
    choices = [_WORDS.get(tok, (tok,)) for tok in tokens]
    return frozenset("".join(c) for c in itertools.islice(itertools.product(*choices), limit))


def _house_number(text: str) -> tuple[str | None, str | None]:
    """``(street, number)`` of ``小河路123号`` or ``123 Xiaohe Road``; ``(None, None)`` if it
    has no house number."""
    for pattern in (_HOUSE_ZH, _HOUSE_EN_FIRST, _HOUSE_EN_LAST):
        m = pattern.match(text)
        if m:
            return m["street"].strip(), m["no"]
    return None, None


def _clusters(xy: np.ndarray, spread_m: float) -> list[list[int]]:
    """Groups of points (single linkage at ``spread_m``), in order of their first point."""
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(xy)):
        for j in range(i + 1, len(xy)):
            if float(np.hypot(*(xy[i] - xy[j]))) <= spread_m:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(xy)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def romanise(name: str) -> str:
    """``小河路`` → ``Xiaohe Lu`` (the first reading of each character; empty if the table
    lacks one)."""
    key = zh_key(name)
    base = _strip_suffix(key)
    parts = []
    for chunk in (base, key[len(base):]):
        if not chunk:
            continue
        spelled = []
        for ch in chunk:
            if ch.isascii():
                spelled.append(ch)
            elif ch in PINYIN:
                spelled.append(PINYIN[ch][0])
            else:
                return ""
        parts.append("".join(spelled).capitalize())
    return " ".join(parts)


# --- constructors -------------------------------------------------------------------------------------
def gazetteer_from_roads(roads: RoadNetwork, *, inside: Iterable[int] | None = None,
                         aliases: Mapping[str, Iterable[str]] | None = None,
                         contains: Callable[[float, float], bool] | None = None,
                         title: str = "the district") -> Gazetteer:
    """The streets of a road network, grouped by name (names equal after :func:`zh_key` are one
    street, shown under the shortest spelling).

    Args:
        roads: The road network.
        inside: Indices of the segments inside the district (default: all).
        aliases: Other spellings by road-data name (OSM ``name:en``, ``name:zh_pinyin``).
        contains: Whether a point of the plane belongs to the district.
        title: The district's name, for messages.
    """
    inside_set = set(range(len(roads))) if inside is None else {int(i) for i in inside}
    groups: dict[str, list[int]] = {}
    spellings: dict[str, set[str]] = {}
    for i, seg in enumerate(roads.segments):
        key = zh_key(seg.name) if seg.name else ""
        if not key:
            continue
        groups.setdefault(key, []).append(i)
        spellings.setdefault(key, set()).add(seg.name.strip())
    streets: dict[str, Street] = {}
    renamed: dict[str, str] = {}
    for key, idx in groups.items():
        name = min(spellings[key], key=lambda s: (len(s), s))
        for s in spellings[key]:
            renamed[s] = name
        streets[name] = Street(name=name, segments=tuple(idx), inside=tuple(i for i in idx if i in inside_set),
                               romanised=romanise(name))
    alias_map: dict[str, list[str]] = {}
    for name, names in (aliases or {}).items():
        alias_map.setdefault(renamed.get(name.strip(), name), []).extend(names)
    return Gazetteer(roads, streets, aliases=alias_map, contains=contains, title=title)


def gazetteer_from_district(district: District, *, aliases: Mapping[str, Iterable[str]] | None = None) -> Gazetteer:
    """The streets of a district: a street's middle is taken over its segments inside the
    district (:attr:`~twin.district.District.responsible`), a junction must lie inside it."""
    return gazetteer_from_roads(district.roads, inside=(int(i) for i in district.responsible), aliases=aliases,
                                contains=district.contains, title=f"district '{district.name}'")


__all__ = ["FIELD", "JUNCTION_GAP_M", "JUNCTION_SPREAD_M", "MAX_ADDRESS_CHARS", "PINYIN", "Gazetteer", "Placement",
           "Street", "clean", "gazetteer_from_district", "gazetteer_from_roads", "latin_keys", "pinyin_keys",
           "romanise", "zh_key"]
