"""Plausible Vietnamese names for the synthetic demo layers.

The syllables are common elements of real place and personal names in Lai
Châu (Thái, H'Mông, Dao and Kinh), combined at random: any match with a real
village or person is a coincidence. All strings are NFC.
"""

from __future__ import annotations

import unicodedata

import numpy as np

# Thái/Lào place-name heads (nà = rice field, nậm = stream, huổi = brook, pá = forest,
# phiêng = flat land, co = tree, bó = spring) and H'Mông/Dao ones (sín, sì, lùng, phìn).
PLACE_HEADS = (
    "Nà", "Nậm", "Huổi", "Pá", "Phiêng", "Co", "Bó", "Noong", "Hua", "Khuổi", "Pắc", "Tà",
    "Sin", "Sì", "Lùng", "Phìn", "Sán", "Chu", "Thèn", "Seo", "Can", "Mé", "Phai", "Lả",
)  # fmt: skip
PLACE_TAILS = (
    "Khum", "Tăm", "Ngò", "Cang", "Bon", "Luông", "Đon", "Cuổi", "Cha", "Lo", "Hẻ", "Chải",
    "Sung", "Mu", "Vàng", "Lìn", "Hon", "Xe", "Pho", "Đích", "Pậu", "Mạ", "Mô", "Sảo",
    "Khoang", "Giàng", "Chăn", "Ngùa", "Củng", "Hẹ", "Cọ", "Lướt", "Pậy", "Thàng",
)  # fmt: skip
# Kinh-style hamlet names (thôn), as given to resettlement and lowland hamlets.
KINH_HEADS = ("Tân", "Sơn", "Đông", "Hưng", "Thịnh", "Hòa", "An", "Phúc", "Minh", "Trung")
KINH_TAILS = ("Lập", "Bình", "Phong", "Hợp", "Thắng", "Tiến", "Kết", "Thành", "Phú", "Lợi")
KINH_HAMLET_SHARE = 0.1  # Lai Châu is ~13% Kinh, mostly in towns and along the main roads
URBAN_BLOCK_SHARE = 0.4  # wards (phường) are part urban blocks (tổ dân phố), part rural bản
NUMBERED_SHARE = 0.2  # split villages carry a number ("Bản Nà Tăm 1")

# (family names, male middle names, male given names, female given names) and the
# share of each group: H'Mông ~40%, Thái ~32%, Dao ~14%, Kinh ~13% of Lai Châu.
PEOPLE = {
    "Mông": (
        ("Giàng", "Sùng", "Vàng", "Thào", "Lý", "Hầu", "Mùa", "Ly"),
        ("A",),
        ("Páo", "Chứ", "Sử", "Dình", "Lử", "Pó", "Súa", "Chống"),
        ("Mỷ", "Sua", "Dợ", "Mai", "Chở", "Di", "Pàng", "Xúa"),
    ),
    "Thái": (
        ("Lò", "Lường", "Tòng", "Điêu", "Quàng", "Cầm", "Hoàng", "Vì"),
        ("Văn",),
        ("Hùng", "Thắng", "Ỏn", "Ban", "Khiêm", "Sơn", "Chiến", "Phóng"),
        ("Mai", "Hoa", "Ơn", "Xuân", "Lả", "Phương", "Thoa", "Hương"),
    ),
    "Dao": (
        ("Tẩn", "Chảo", "Phàn", "Lý", "Đặng"),
        ("Láo", "Văn"),
        ("Lở", "San", "Chòi", "Quẩy", "Phù"),
        ("Mẩy", "Sành", "Dùa", "Chiêu", "Phéng"),
    ),
    "Kinh": (
        ("Nguyễn", "Trần", "Lê", "Phạm", "Vũ", "Đỗ"),
        ("Văn", "Đức"),
        ("Minh", "Tuấn", "Dũng", "Hải", "Long", "Quang"),
        ("Lan", "Hằng", "Thu", "Ngọc", "Dung", "Trang"),
    ),
}
PEOPLE_SHARE = (0.40, 0.33, 0.14, 0.13)


def nfc(text: str) -> str:
    """NFC-normalise a string (names are stored as NFC, see DESIGN.md)."""
    return unicodedata.normalize("NFC", text)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only, e.g. for platform handles.

    >>> ascii_slug("Chè Tân Uyên")
    'chetanuyen'
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed.lower() if c.isascii() and c.isalnum())


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def village_names(rng: np.random.Generator, count: int, *, urban: bool) -> list[str]:
    """`count` distinct village names for one commune ("Bản Nà Khum", "Thôn Sơn Bình 2").

    In a ward (`urban`), part of the units are numbered urban blocks.
    """
    names: list[str] = []
    blocks = 0
    while len(names) < count:
        if urban and rng.random() < URBAN_BLOCK_SHARE:
            blocks += 1
            names.append(f"Tổ dân phố số {blocks}")
            continue
        if rng.random() < KINH_HAMLET_SHARE:
            name = f"Thôn {_pick(rng, KINH_HEADS)} {_pick(rng, KINH_TAILS)}"
        else:
            name = f"Bản {_pick(rng, PLACE_HEADS)} {_pick(rng, PLACE_TAILS)}"
        if rng.random() < NUMBERED_SHARE:
            name += f" {rng.integers(1, 4)}"
        if name not in names:
            names.append(name)
    return [nfc(n) for n in names]


def person_name(rng: np.random.Generator) -> str:
    """A person's full name in the naming pattern of one of Lai Châu's main groups."""
    group = list(PEOPLE)[rng.choice(len(PEOPLE), p=PEOPLE_SHARE)]
    families, middles, male, female = PEOPLE[group]
    if rng.random() < 0.5:
        return nfc(f"{_pick(rng, families)} {_pick(rng, middles)} {_pick(rng, male)}")
    return nfc(f"{_pick(rng, families)} Thị {_pick(rng, female)}")


def place_core(village_name: str) -> str:
    """A village name without its unit word: "Bản Nà Khum 2" -> "Nà Khum 2"."""
    unit, _, rest = village_name.partition(" ")
    return rest if unit in ("Bản", "Thôn") else village_name
