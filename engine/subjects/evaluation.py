"""Labelled pairs of subject records for measuring the matcher: same person or not.

Deterministic for a seed. Each tradition lists names with the spellings that really
occur for them (transliterations, diacritics, particles); a true pair is one person
written twice with one or two of the variations the Southport review warns of (another
spelling, a typo, given and family swapped, a middle name dropped, diacritics lost, the
date of birth with digits transposed or as a year only, the locality missing). A false
pair is two different people with similar names: a sibling (same family name, another
given name), a namesake (same or similar name, another date of birth), or a same-year
namesake with a different date.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from engine.subjects.details import BirthDate, PersonName, SubjectDetails

Variants = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Tradition:
    name: str
    given: Variants
    family: Variants
    middle: Variants = ()
    # Family name written first in everyday use (Vietnamese).
    family_first: bool = False
    places: tuple[str, ...] = ("Southport", "Liverpool", "Bootle", "Sefton", "Crosby")


def _v(*groups: str) -> Variants:
    return tuple(tuple(g.split("/")) for g in groups)


TRADITIONS: tuple[Tradition, ...] = (
    Tradition(
        "arabic",
        _v("Mohammed/Muhammad/Mohamed/Mohammad/Muhammed", "Ahmed/Ahmad", "Yusuf/Youssef/Yousef",
           "Omar/Umar", "Khalid/Khaled", "Hussein/Husain/Hussain", "Ibrahim/Ebrahim",
           "Abdulrahman/Abdul Rahman/Abdel Rahman", "Mustafa/Mostafa", "Tariq/Tarek",
           "Fatima/Fatimah", "Aisha/Aysha/Aicha", "Karim/Kareem", "Samir/Sameer", "Walid/Waleed",
           "Hamza/Hamzah"),
        _v("Al-Hassan/Alhasan/Al Hassan/El-Hassan", "Al-Rashid/Alrashid/Al Rasheed",
           "Haddad/Hadad", "Mansour/Mansur", "Al-Amin/Alamin", "Saleh/Salih", "Nasser/Nasir",
           "Khalil/Khaleel", "Abdallah/Abdullah", "Haddad-Yousef/Haddad Yusuf", "Qureshi/Kureshi",
           "Al-Masri/Almasri/El Masri", "Farouk/Farouq/Faruk", "Darwish/Darwich",
           "Hamdan/Hamdane", "Najjar/Najar"),
        _v("Ali", "Hassan/Hasan", "Ahmed/Ahmad"),
    ),
    Tradition(
        "somali",
        _v("Abdullahi/Abdulahi", "Mohamed/Maxamed/Mohammed", "Ahmed/Axmed", "Hassan/Xasan",
           "Abdirahman/Abdirahmaan", "Hodan", "Ayaan/Ayan", "Faisal/Faysal", "Ismail/Ismaaciil",
           "Yusuf/Yuusuf", "Ilhan/Ilhaan", "Omar/Cumar", "Sahra/Sahro", "Abdi/Cabdi"),
        _v("Warsame/Warsama", "Farah/Faarax", "Hirsi/Xirsi", "Jama/Jaamac", "Osman/Cusmaan",
           "Abdi/Cabdi", "Yusuf/Yuusuf", "Aden/Aadan", "Egal/Cigaal", "Duale/Ducaale",
           "Mohamud/Maxamuud", "Ali/Cali", "Hussein/Xuseen", "Shire/Shiire"),
        _v("Ahmed/Axmed", "Ali/Cali"),
    ),
    Tradition(
        "pakistani",
        _v("Muhammad/Mohammad/Mohammed", "Imran/Imraan", "Bilal/Belal", "Usman/Osman/Uthman",
           "Zainab/Zaynab", "Ayesha/Aisha", "Hamza/Hamzah", "Faisal/Faysal", "Asif/Aasif",
           "Saima/Saimah", "Naveed/Navid", "Shahid/Shaheed", "Zeeshan/Zishan", "Adnan/Adnaan"),
        _v("Khan", "Hussain/Hussein/Husain", "Ahmed/Ahmad", "Iqbal/Ikbal", "Malik/Malick",
           "Chaudhry/Chaudhary/Choudhury", "Qureshi/Kureshi/Quraishi", "Butt/But",
           "Sheikh/Shaikh", "Raza/Rasa", "Mirza", "Siddiqui/Siddiqi/Sadiqi", "Rehman/Rahman",
           "Akhtar/Akhter"),
        _v("Ali", "Abdul"),
    ),
    Tradition(
        "vietnamese",
        _v("Minh", "Anh", "Duc/Đức", "Thanh", "Hung/Hùng", "Linh", "Trang", "Tuan/Tuấn",
           "Huong/Hương", "Quang", "Phuong/Phương", "Dung/Dũng", "Khoa", "Long"),
        _v("Nguyen/Nguyễn/Nguyen", "Tran/Trần", "Le/Lê", "Pham/Phạm", "Hoang/Hoàng/Huynh",
           "Vu/Vũ/Vo", "Dang/Đặng", "Bui/Bùi", "Do/Đỗ", "Ngo/Ngô", "Duong/Dương", "Ly/Lý"),
        _v("Van/Văn", "Thi/Thị", "Huu/Hữu", "Ngoc/Ngọc"),
        family_first=True,
    ),
    Tradition(
        "polish",
        _v("Łukasz/Lukasz", "Wojciech/Wojtek", "Krzysztof/Krzystof", "Paweł/Pawel",
           "Michał/Michal", "Piotr", "Tomasz", "Grzegorz", "Małgorzata/Malgorzata",
           "Agnieszka/Agnieska", "Katarzyna/Katarzina", "Jakub", "Mateusz/Mateush", "Zofia/Sofia"),
        _v("Kowalski/Kovalsky/Kowalsky", "Wiśniewski/Wisniewski/Vishnevsky",
           "Wójcik/Wojcik/Voicik", "Kamiński/Kaminski/Kaminsky", "Lewandowski/Levandovsky",
           "Zieliński/Zielinski", "Szymański/Szymanski/Shimansky", "Dąbrowski/Dabrowski",
           "Kozłowski/Kozlowski", "Jankowski/Yankovsky", "Mazur", "Krawczyk/Kravchik"),
        _v("Jan", "Maria", "Józef/Jozef"),
    ),
    Tradition(
        "english",
        _v("Thomas/Tom", "James", "Oliver", "Jack", "Harry", "Joshua", "Callum/Calum",
           "Connor/Conor", "Jordan", "Liam", "Sophie/Sophia", "Chloe", "Megan/Meghan",
           "Rebecca/Rebekah", "Stephen/Steven", "Philip/Phillip"),
        _v("Smith/Smyth", "Jones", "Williams", "Taylor", "Brown", "Davies/Davis",
           "Thompson/Thomson/Tomson", "Robinson", "Wright", "Walker", "Hughes", "Edwards",
           "Macdonald/McDonald", "O'Brien/OBrien/O Brien", "Clarke/Clark", "Gray/Grey"),
        _v("John", "Michael", "David", "Anne/Ann"),
    ),
    Tradition(
        "spanish",
        _v("José/Jose", "Juan", "Javier/Xavier", "Alejandro", "Sergio", "Andrés/Andres",
           "Jesús/Jesus", "María/Maria", "Lucía/Lucia", "Raúl/Raul", "Álvaro/Alvaro",
           "Inés/Ines", "Nicolás/Nicolas", "Guillermo"),
        _v("García/Garcia", "Fernández/Fernandez", "González/Gonzalez/Gonzales",
           "Rodríguez/Rodriguez", "López/Lopez", "Martínez/Martinez", "Sánchez/Sanchez",
           "Pérez/Perez", "Gómez/Gomez", "Hernández/Hernandez", "Jiménez/Jimenez/Ximenez",
           "de la Cruz/De La Cruz/Cruz", "Vázquez/Vazquez/Vasquez", "Domínguez/Dominguez"),
        _v("Luis", "Carlos", "Antonio"),
    ),
)


@dataclass(frozen=True, slots=True)
class Pair:
    a: SubjectDetails
    b: SubjectDetails
    same: bool
    tradition: str
    how: str


@dataclass(frozen=True, slots=True)
class _Person:
    given: tuple[str, ...]
    family: tuple[str, ...]
    middle: tuple[str, ...] | None
    born: BirthDate
    place: str
    tradition: Tradition


def _person(rng: random.Random, trad: Tradition) -> _Person:
    middle = rng.choice(trad.middle) if trad.middle and rng.random() < 0.4 else None
    year = rng.randint(1975, 2012)
    born = BirthDate(year, rng.randint(1, 12), rng.randint(1, 28))
    return _Person(rng.choice(trad.given), rng.choice(trad.family), middle, born,
                   rng.choice(trad.places), trad)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randint(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _written(rng: random.Random, p: _Person, *, variant: bool, drop_middle: bool = False,
             swap: bool = False, typo: bool = False) -> PersonName:
    def pick(group: tuple[str, ...]) -> str:
        return rng.choice(group) if variant else group[0]

    given, family = pick(p.given), pick(p.family)
    if typo:
        if rng.random() < 0.5:
            given = _typo(rng, given)
        else:
            family = _typo(rng, family)
    if p.middle is not None and not drop_middle:
        given = f"{given} {pick(p.middle)}"
    if swap != p.tradition.family_first:
        given, family = family, given
    return PersonName(given=given, family=family)


def _vary_date(rng: random.Random, born: BirthDate) -> tuple[BirthDate | None, str]:
    roll = rng.random()
    if roll < 0.55:
        return born, "dob exact"
    if roll < 0.70:
        return BirthDate(born.year), "year only"
    if roll < 0.80 and (born.day or 0) <= 12 and born.day != born.month:
        return BirthDate(born.year, born.day, born.month), "day and month swapped"
    if roll < 0.90:
        day = born.day or 1
        flipped = int(f"{day:02d}"[::-1])
        if 1 <= flipped <= 28 and flipped != day:
            return BirthDate(born.year, born.month, flipped), "day digits transposed"
        return born, "dob exact"
    if roll < 0.95:
        return None, "dob missing"
    return born, "dob exact"


def _true_pair(rng: random.Random, trad: Tradition) -> Pair:
    p = _person(rng, trad)
    a = SubjectDetails((_written(rng, p, variant=False),), p.born, p.place)
    changes = rng.sample(("variant", "typo", "swap", "drop_middle", "variant"), 2)
    name = _written(rng, p, variant="variant" in changes, drop_middle="drop_middle" in changes,
                    swap="swap" in changes, typo="typo" in changes)
    born, how = _vary_date(rng, p.born)
    place = p.place if rng.random() < 0.75 else None
    b = SubjectDetails((name,), born, place)
    return Pair(a, b, True, trad.name, f"{'+'.join(sorted(set(changes)))}, {how}")


def _other_date(rng: random.Random, born: BirthDate, *, same_year: bool) -> BirthDate:
    while True:
        year = born.year if same_year else rng.randint(1975, 2012)
        other = BirthDate(year, rng.randint(1, 12), rng.randint(1, 28))
        if other != born and (same_year or year != born.year):
            return other


def _false_pair(rng: random.Random, trad: Tradition) -> Pair:
    p = _person(rng, trad)
    a = SubjectDetails((_written(rng, p, variant=False),), p.born, p.place)
    kind = rng.choice(("sibling", "namesake", "namesake", "same_year_namesake"))
    if kind == "sibling":
        others = [g for g in trad.given if g != p.given]
        q = replace(p, given=rng.choice(others),
                    born=_other_date(rng, p.born, same_year=False), middle=None)
    elif kind == "namesake":
        q = replace(p, born=_other_date(rng, p.born, same_year=False))
    else:
        q = replace(p, born=_other_date(rng, p.born, same_year=True))
    name = _written(rng, q, variant=True, drop_middle=rng.random() < 0.5)
    place = p.place if rng.random() < 0.6 else rng.choice(trad.places)
    return Pair(a, SubjectDetails((name,), q.born, place), False, trad.name, kind)


def labelled_pairs(count: int = 4000, *, seed: int = 18) -> Iterator[Pair]:
    """``count`` pairs, half of them the same person, spread over every tradition."""
    rng = random.Random(seed)
    for i in range(count):
        trad = TRADITIONS[i % len(TRADITIONS)]
        yield _true_pair(rng, trad) if i % 2 == 0 else _false_pair(rng, trad)


@dataclass(frozen=True, slots=True)
class Quality:
    threshold: float
    precision: float
    recall: float
    true_positives: int
    false_positives: int
    false_negatives: int
    pairs: int


def evaluate(threshold: float, count: int = 4000, *, seed: int = 18) -> Quality:
    """Precision and recall of candidate search at ``threshold`` on the shipped set: a
    pair is found when a search for ``b`` (the new referral) reads ``a``'s block and
    scores it at ``threshold`` or more."""
    from engine.subjects.scoring import score
    from engine.subjects.search import in_block

    tp = fp = fn = n = 0
    for pair in labelled_pairs(count, seed=seed):
        n += 1
        found = in_block("eval", pair.b, pair.a, threshold) and (
            score(pair.b, pair.a, pair.b.forms(), pair.a.forms()).score >= threshold)
        tp += found and pair.same
        fp += found and not pair.same
        fn += (not found) and pair.same
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return Quality(threshold, precision, recall, tp, fp, fn, n)
