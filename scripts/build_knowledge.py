"""Build the clinical knowledge files from the shared reference folder.

Reads ``<shared>/reference`` (VSAC value-set expansions and the two project TSV tables) and the
ICD-10-CM April 2026 tabular list shipped in the PyPI package ``simple-icd-10-cm==1.5.0``, and
writes ``hooks/rules/knowledge/drugs.json`` and ``codes.json``. The output is deterministic:
running the script twice gives byte-identical files. See ``docs/knowledge.md``.
``policy.json`` (thresholds, windows and the rule-set version) is edited by hand: it is not
derived from any value set, and each entry carries its citation.

Usage::

    python scripts/build_knowledge.py                # write drugs.json and codes.json
    python scripts/build_knowledge.py --check        # exit 1 if the files are out of date
    python scripts/build_knowledge.py --shared /path/to/shared

``simple-icd-10-cm`` is a build-time dependency only; the service never imports it.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO_ROOT.parent / "shared"
OUT_DIR = REPO_ROOT / "hooks" / "rules" / "knowledge"

VERSION = 1
VERSION_DATE = "2026-11-27"

Json = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# Source tags (citation texts copied from the source legend of docs/clinical-knowledge.md)
# --------------------------------------------------------------------------------------------------

SOURCES: dict[str, str] = {
    "VSAC": (
        "VSAC:<OID> = reference/valuesets/valueset-<OID>.json in the shared folder, copied from "
        "github.com/cqframework/ecqm-content-cms-2025 @ d80fd0ae5cae13780a0132c10192e2613cebb559, "
        "input/vocabulary/valueset/external/ (CC0; content published by NLM VSAC, expansion "
        "20240502)"
    ),
    "ICD10CM-2026": (
        "ICD-10-CM tabular list, April 1 2026 release (CDC/NCHS), as shipped in PyPI package "
        "simple-icd-10-cm 1.5.0 (MIT), file simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml. "
        "Descriptions quoted from it; descendants enumerated with it at build time."
    ),
    "CPIC": (
        "github.com/cpicpgx/cpic-data @ 25e700028fcd5bfe1f2905852b236a34ca824888, db/drug.sql "
        "(columns rxnormId, atcId)"
    ),
    "ATCF": (
        "Unverified third-party list: a public Python file listing RxNorm ingredient RxCUIs per "
        "ATC level-4 group for N06A, said to be derived from RxNav; repository not identified. "
        "Unverified - check the primary source (RxNav, WHOCC ATC) before relying on it."
    ),
    "RREF": (
        "Unverified third-party list: a public R script 'ATC Drug Reference Data' mapping "
        "antidepressant names to ATC codes; repository not identified. Unverified - check the "
        "primary source (WHOCC ATC) before relying on it."
    ),
    "ATRQ": (
        "MGH Antidepressant Treatment Response Questionnaire (ATRQ), 'Minimum Dose' column, as "
        "transcribed in a public trial-screening protocol file for COMPASS Pathways COMP006 "
        "(third-party transcription; repository not identified). Unverified - check the primary "
        "source (the MGH ATRQ form) before relying on it. Cross-checked where possible with "
        "Chandler2010 and MDedge."
    ),
    "ATRQ-TSV": (
        "reference/clinical/antidepressant_adequate_doses.tsv notes column (project reference "
        "table)"
    ),
    "Chandler2010": (
        "Chandler GM et al. Validation of the Massachusetts General Hospital Antidepressant "
        "Treatment History Questionnaire (ATRQ). CNS Neurosci Ther 2010;16(5):322-325, PMC6493891"
    ),
    "MDedge": (
        "'Personalizing depression treatment: 2 clinical tools', Current Psychiatry (MDedge); "
        "clinical article by the ATRQ authors"
    ),
    "Fabbri2021": (
        "Fabbri C et al. Genetic and clinical characteristics of treatment-resistant depression "
        "using primary care records in two UK cohorts. Mol Psychiatry 2021 (PMID 33753889). Rules "
        "as implemented in code: github.com/Exeter-Diabetes/CPRD-Dale-depression-cohort @ "
        "fdde88878acc8ab2e888c55d097a2c9fcd2f8b51, "
        "scripts/depression_phenotypes/create_TRD_phenotype.R"
    ),
    "Zhdanava2021": (
        "Zhdanava M et al. The prevalence and national burden of treatment-resistant depression "
        "and major depressive disorder in the United States. J Clin Psychiatry 2021. The rule as "
        "summarised on psychiatrist.com, 'How to identify TRD in medication-treated MDD' "
        "(secondary summary)"
    ),
    "Kroenke2001": (
        "Kroenke K, Spitzer RL, Williams JB. The PHQ-9: validity of a brief depression severity "
        "measure. J Gen Intern Med 2001;16(9):606-613. Severity cut-offs 5/10/15/20 as quoted in "
        "docs/clinical-knowledge.md C1; unverified against the paper."
    ),
    "SPV-PI": (
        "SPRAVATO (esketamine) nasal spray, US Prescribing Information (Janssen). Text available "
        "only through third-party transcriptions and Important Safety Information (ISI) excerpts "
        "(120ty.net 2019 PI transcription; usmedicine.com, wcmedicine.com, "
        "spravatotreatmentcenter.com, spravatohcp.com dosing page; beinghealth.co patient ISI). "
        "Unverified - check the current PI (DailyMed / Drugs@FDA) before relying on it."
    ),
    "FDA-2025": (
        "FDA approval of SPRAVATO monotherapy for TRD, 21 January 2025 (Johnson & Johnson "
        "announcement as reported by Becker's, Mental Health Weekly 35(4) and others)"
    ),
    "Sanacora2017": (
        "Sanacora G, Frye MA, McDonald W, et al. A consensus statement on the use of ketamine in "
        "the treatment of mood disorders. JAMA Psychiatry 2017;74(4):399-405. "
        "doi:10.1001/jamapsychiatry.2017.0080. Points taken from secondary summaries, not from "
        "the full text (unverified)."
    ),
    "FHIR-R4": (
        "HL7 FHIR R4 code system http://terminology.hl7.org/CodeSystem/"
        "medicationrequest-status-reason (example binding of MedicationRequest.statusReason)"
    ),
    "LOINC": (
        "LOINC (Regenstrief Institute), loinc.org: PHQ-9 panel 44249-1 'PHQ-9 quick depression "
        "assessment panel [Reported.PHQ]' with its item and total components"
    ),
    "3P": (
        "Third-party public FHIR files (Questionnaires, IG examples, Synthea test data) that use "
        "the code: evidence that the code is used, not an authority"
    ),
    "RxNorm-BN": (
        "US brand names as RxNorm brand-name (BN) concepts, lowercased; compiled from general "
        "knowledge of US labelling and unverified against RxNav - check before relying on them"
    ),
    "CK": (
        "docs/clinical-knowledge.md in the shared folder (the project's clinical reference notes), "
        "cited by section, e.g. CK:A3.4; its proposed operational rules are not an external source"
    ),
    "UNVERIFIED": (
        "No primary source confirmed: the value reflects label wording or a common clinical "
        "convention as recorded (marked unverified) in reference/clinical/"
        "antidepressant_adequate_doses.tsv and docs/clinical-knowledge.md. Check the primary "
        "source before relying on it."
    ),
    "DESIGN": (
        "A documented design choice of this project (see docs/knowledge.md), not taken from an "
        "external source"
    ),
}

# --------------------------------------------------------------------------------------------------
# Value sets
# --------------------------------------------------------------------------------------------------

VS_ANTIDEPRESSANT_MEDICATION = "2.16.840.1.113883.3.464.1003.196.12.1213"
VS_ANTIDEPRESSANTS = "2.16.840.1.113762.1.4.1248.163"
VS_ADULT_DEPRESSION_MEDS = "2.16.840.1.113883.3.526.3.1566"
VS_HARMFUL_ANTIPSYCHOTICS = "2.16.840.1.113883.3.464.1003.196.12.1523"
VS_CNS_DEPRESSANTS = "2.16.840.1.113762.1.4.1248.134"
DRUG_VALUE_SETS = (
    VS_ANTIDEPRESSANT_MEDICATION,
    VS_ANTIDEPRESSANTS,
    VS_ADULT_DEPRESSION_MEDS,
    VS_HARMFUL_ANTIPSYCHOTICS,
    VS_CNS_DEPRESSANTS,
)

VS_MDD_INCL_REMISSION = "2.16.840.113883.3.67.1.101.3.2444"
VS_MAJOR_DEPRESSION = "2.16.840.1.113883.3.464.1003.105.12.1007"
VS_DEPRESSION = "2.16.840.1.113762.1.4.1248.169"
VS_BIPOLAR = "2.16.840.1.113883.3.67.1.101.1.128"
VS_SCHIZO_OR_PSYCHOTIC = "2.16.840.1.113883.3.464.1003.105.12.1104"
VS_SCHIZOPHRENIA = "2.16.840.1.113883.3.464.1003.105.12.1205"
VS_SUD = "2.16.840.1.113883.3.464.1003.106.12.1001"
VS_SUBSTANCE_ABUSE = "2.16.840.1.113762.1.4.1029.320"
VS_SUICIDE_ATTEMPT = "2.16.840.1.113762.1.4.1248.130"
VS_ELEVATED_BP = "2.16.840.1.113762.1.4.1047.514"
VS_DX_HYPERTENSION = "2.16.840.1.113883.3.600.263"
VS_HEART_FAILURE = "2.16.840.1.113883.3.526.3.376"
VS_ACUTE_MI = "2.16.840.1.113883.3.666.5.623"
VS_ANGINA = "2.16.840.1.113762.1.4.1047.47"
VS_AORTIC_ANEURYSM = "2.16.840.1.113762.1.4.1029.219"
VS_AORTIC_DISSECTION = "2.16.840.1.113883.3.3157.4028"
VS_CEREBRAL_VASCULAR_LESION = "2.16.840.1.113883.3.3157.4025"
VS_HEMORRHAGIC_STROKE = "2.16.840.1.113883.3.117.1.7.1.212"
VS_PREGNANCY = "2.16.840.1.113883.3.526.3.378"
VS_PREGNANT_STATE = "2.16.840.1.113883.3.3157.4055"
VS_BREASTFEEDING = "2.16.840.1.113762.1.4.1047.73"
VS_PHQ9 = "2.16.840.1.113883.3.67.1.101.1.263"
VS_SYSTOLIC_BP = "2.16.840.1.113762.1.4.1045.163"
VS_BODY_WEIGHT = "2.16.840.1.113762.1.4.1045.159"

ICD = "ICD-10-CM"
SCT = "SNOMED CT"
LOINC = "LOINC"
SYSTEM_SHORT_NAMES: dict[str, str] = {
    "http://hl7.org/fhir/sid/icd-10-cm": ICD,
    "http://snomed.info/sct": SCT,
    "http://loinc.org": LOINC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}
STATUS_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
ICD_SRC = "ICD10CM-2026"


def vsac(oid: str) -> str:
    return f"VSAC:{oid}"


class Reference:
    """Read access to the shared reference folder."""

    def __init__(self, shared: Path) -> None:
        self.root = shared / "reference"
        if not (self.root / "valuesets").is_dir():
            raise SystemExit(f"no reference/valuesets under {shared} (use --shared)")
        self._vs: dict[str, list[dict[str, str]]] = {}

    def valueset(self, oid: str) -> list[dict[str, str]]:
        """Expansion of a value set as (system short name, code, display) dicts, in file order."""
        if oid not in self._vs:
            path = self.root / "valuesets" / f"valueset-{oid}.json"
            data = json.loads(path.read_text(encoding="utf-8"))
            self._vs[oid] = [
                {
                    "system": SYSTEM_SHORT_NAMES.get(c["system"], c["system"]),
                    "code": c["code"],
                    "display": c["display"],
                }
                for c in data["expansion"]["contains"]
            ]
        return self._vs[oid]

    def tsv(self, name: str) -> list[dict[str, str]]:
        path = self.root / "clinical" / name
        with path.open(encoding="utf-8", newline="") as fh:
            return [
                {k: (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(fh, delimiter="\t")
            ]


# --------------------------------------------------------------------------------------------------
# ICD-10-CM (build time only)
# --------------------------------------------------------------------------------------------------


class Icd:
    """Thin typed wrapper around simple_icd_10_cm."""

    def __init__(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the package imports the deprecated pkg_resources
                import simple_icd_10_cm as cm  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - environment problem
            raise SystemExit(
                "build_knowledge.py needs the build-time package simple-icd-10-cm==1.5.0 "
                "(pip install simple-icd-10-cm==1.5.0)"
            ) from exc
        self._cm = cm

    def valid(self, code: str) -> bool:
        return bool(self._cm.is_valid_item(code))

    def description(self, code: str) -> str:
        if not self.valid(code):
            raise SystemExit(f"ICD-10-CM code {code} is not in the 2026 tabular list")
        return str(self._cm.get_description(code))

    def with_descendants(self, code: str) -> list[str]:
        """The code itself and every descendant, in tabular order."""
        self.description(code)  # validates
        return [code, *(str(c) for c in self._cm.get_descendants(code))]

    def billable(self, code: str) -> list[str]:
        """The billable codes at or below ``code`` (leaves of the tabular list)."""
        return [c for c in self.with_descendants(code) if self._cm.is_leaf(c)]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def word_re(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted(set(names), key=lambda n: (-len(n), n))
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in alternatives) + r")\b")


def version_history(change: str) -> list[Json]:
    return [{"version": VERSION, "date": VERSION_DATE, "change": change}]


def tags_of(value: str) -> set[str]:
    return {part.strip().split(":", 1)[0].strip() for part in value.split(";") if part.strip()}


def used_tags(obj: object) -> set[str]:
    """Every source tag cited anywhere in a knowledge document (keys `source` or `*_source`)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if (key == "source" or key.endswith("_source")) and isinstance(value, str):
                found |= tags_of(value)
            else:
                found |= used_tags(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= used_tags(item)
    return found


def sources_for(doc: Json, extra: Iterable[str] = ()) -> dict[str, str]:
    tags = used_tags(doc) | set(extra)
    missing = sorted(tags - set(SOURCES))
    if missing:
        raise SystemExit(f"source tags used but not defined: {missing}")
    return {tag: SOURCES[tag] for tag in sorted(tags)}


# ==================================================================================================
# drugs.json
# ==================================================================================================

ROLE_MAP: dict[str, str] = {
    "antidepressant": "antidepressant",
    "augmenter": "augmenter",
    "augmenter(off-label)": "augmenter",
    "bipolar-depression only": "bipolar",
    "bipolar maintenance / off-label augmentation": "bipolar",
    "target_therapy": "target-therapy",
}

BRANDS: dict[str, tuple[str, ...]] = {
    "fluoxetine": ("prozac", "sarafem"),
    "sertraline": ("zoloft",),
    "citalopram": ("celexa",),
    "escitalopram": ("lexapro",),
    # Brisdelle (paroxetine mesylate 7.5 mg, vasomotor symptoms) is deliberately not a brand here:
    # its product carries non_depression_use instead.
    "paroxetine": ("paxil", "pexeva"),
    "fluvoxamine": ("luvox",),
    "venlafaxine": ("effexor",),
    "desvenlafaxine": ("pristiq", "khedezla"),
    "duloxetine": ("cymbalta", "drizalma"),
    "levomilnacipran": ("fetzima",),
    "milnacipran": ("savella",),
    "amitriptyline": ("elavil",),
    "clomipramine": ("anafranil",),
    "desipramine": ("norpramin",),
    "doxepin": ("sinequan", "silenor"),
    "imipramine": ("tofranil",),
    "nortriptyline": ("pamelor", "aventyl"),
    "protriptyline": ("vivactil",),
    "trimipramine": ("surmontil",),
    "isocarboxazid": ("marplan",),
    "phenelzine": ("nardil",),
    "tranylcypromine": ("parnate",),
    "selegiline": ("emsam",),
    # Zyban (smoking cessation) is deliberately absent: see codes.json non-depression-indication
    # and the non_depression_use of the "Smoking Cessation" products.
    "bupropion": ("wellbutrin", "aplenzin", "forfivo"),
    "mirtazapine": ("remeron", "remeronsoltab"),
    "trazodone": ("desyrel", "oleptro"),
    "vilazodone": ("viibryd",),
    "vortioxetine": ("trintellix", "brintellix"),
    "aripiprazole": ("abilify",),
    "brexpiprazole": ("rexulti",),
    "cariprazine": ("vraylar",),
    "quetiapine": ("seroquel",),
    "olanzapine": ("zyprexa",),
    "risperidone": ("risperdal",),
    "lurasidone": ("latuda",),
    "lithium": ("lithobid",),
    "liothyronine": ("cytomel",),
    "lamotrigine": ("lamictal",),
    "esketamine": ("spravato",),
    "ketamine": ("ketalar",),
}
"""Symbyax (olanzapine/fluoxetine) and Auvelity (dextromethorphan/bupropion) are multi-ingredient
brands and are not listed: their SCD products carry both ingredients."""

NAMES: dict[str, tuple[str, ...]] = {
    "lithium": ("lithium carbonate", "lithium citrate"),
}

# (max daily mg taken as a non-depression use, source, explanation)
NON_DEPRESSION: dict[str, tuple[float, str, str]] = {
    "trazodone": (
        100,
        "ATRQ-TSV",
        "<= 100 mg/day taken as hypnotic use (TSV: 25-100 mg at bedtime is usually hypnotic)",
    ),
    "amitriptyline": (
        50,
        "ATRQ-TSV",
        "<= 50 mg/day taken as pain/sleep/migraine use (TSV: 10-50 mg/d common for those)",
    ),
    "doxepin": (
        10,
        "ATRQ-TSV;DESIGN",
        "<= 10 mg/day taken as hypnotic use: 3/6 mg (Silenor) are hypnotic per the TSV; the "
        "10 mg limit (lowest antidepressant capsule strength) is a DESIGN choice",
    ),
    "mirtazapine": (
        7.5,
        "ATRQ-TSV",
        "<= 7.5 mg/day taken as sleep/appetite use (TSV: 7.5-15 mg often used for sleep/appetite)",
    ),
    "paroxetine": (
        7.5,
        "ATRQ-TSV",
        "<= 7.5 mg/day taken as vasomotor use (TSV: paroxetine mesylate 7.5 mg, Brisdelle)",
    ),
    "nortriptyline": (
        25,
        "DESIGN",
        "<= 25 mg/day taken as low-dose pain use; DESIGN choice, not from a source",
    ),
    "quetiapine": (
        100,
        "ATRQ-TSV",
        "<= 100 mg/day taken as hypnotic use (TSV: 25-100 mg is usually hypnotic use)",
    ),
}

EXTRA_NOTES: dict[str, str] = {
    "venlafaxine": (
        "150 mg kept (ATRQ transcription; MDedge worked example venlafaxine 75 mg x 7 weeks = "
        "inadequate dose is consistent with 150); some versions use 75"
    ),
    "selegiline": (
        "minimum dose in mg/24h, transdermal system only; transdermal product strengths are "
        "stored as mg/24h (MG/HR x 24); oral selegiline products carry non_depression_use"
    ),
    "liothyronine": "minimum dose 25 mcg converted to 0.025 mg",
    "bupropion": (
        "hydrobromide products are stored at their HCl-equivalent strength "
        "(174/348/522 mg HBr -> 150/300/450 mg HCl)"
    ),
    "lithium": "6448 is the lithium ion RxCUI; 42351 (lithium carbonate) per the TSV, unverified",
    "dextromethorphan": (
        "no ATRQ value; Auvelity = dextromethorphan/bupropion (multi-ingredient RxCUI not "
        "identified; VSAC SCD 2611260 carries both ingredients). Dextromethorphan alone (cough "
        "products) is not an antidepressant"
    ),
}


def _tag_of_tsv_source(text: str) -> str | None:
    """Translate a TSV *_source cell into source tags."""
    text = text.strip()
    if not text or text == "gap":
        return None
    tags: list[str] = []
    for part in re.split(r";(?![^()]*\))", text):
        part = part.strip()
        if part.startswith("CPIC"):
            tags.append("CPIC")
        elif part.startswith("ATCF comment"):
            tags.append("ATCF:comment")
        elif part.startswith("ATCF"):
            tags.append("ATCF")
        elif part.startswith("RREF"):
            tags.append("RREF")
        elif part.startswith("ATRQ country addendum"):
            tags.append("ATRQ:country addendum")
        elif part.startswith("ATRQ"):
            tags.append("ATRQ")
        elif part.startswith("3P"):
            tags.append("3P:third-party FHIR files")
        elif part.startswith("unverified (label)"):
            tags.append("UNVERIFIED:label")
        elif part.startswith("unverified (convention)"):
            tags.append("UNVERIFIED:convention")
        elif part.startswith("unverified"):
            tags.append("UNVERIFIED")
        else:
            raise SystemExit(f"unknown source in TSV: {text!r}")
    return ";".join(tags)


def _ingredient(row: dict[str, str], name: str, rxcui: str | None) -> Json:
    role = ROLE_MAP[row["role"]]
    dose: int | float | None = None
    if row["atrq_min_daily_dose"]:
        dose = number(row["atrq_min_daily_dose"])
        if row["unit"] == "mcg":
            dose = number(str(dose / 1000))
        elif row["unit"] not in ("mg", "mg/24h"):
            raise SystemExit(f"unexpected unit {row['unit']!r} for {name}")
    dose_source = _tag_of_tsv_source(row["dose_source"]) if dose is not None else None
    rxcui_source = _tag_of_tsv_source(row["rxcui_source"]) if rxcui else None

    notes: list[str] = []
    if row["notes"]:
        notes.append(row["notes"])
    if name in EXTRA_NOTES:
        notes.append(EXTRA_NOTES[name])
    if rxcui_source and "CPIC" not in rxcui_source:
        if "UNVERIFIED" in rxcui_source:
            notes.append(f"RxCUI {rxcui} unverified (no source confirmed)")
        else:
            notes.append(f"RxCUI {rxcui} from an unverified third-party list")
    if dose_source:
        if dose_source.startswith("ATRQ:"):
            notes.append("minimum dose from the ATRQ country addendum (unverified)")
        elif dose_source.startswith("ATRQ"):
            notes.append("minimum dose from the ATRQ transcription (unverified)")
        elif dose_source == "UNVERIFIED:label":
            notes.append("minimum dose unverified (label wording)")
        else:
            notes.append("minimum dose unverified (common convention)")
    if row["atc"]:
        atc_tag = row["atc_source"].split(" ")[0]
        if atc_tag == "CPIC":
            notes.append(f"ATC {row['atc']} (CPIC)")
        elif atc_tag == "unverified":
            notes.append(f"ATC {row['atc']} (unverified)")
        else:
            notes.append(f"ATC {row['atc']} ({atc_tag}, unverified)")

    entry: Json = {
        "name": name,
        "rxcui": rxcui,
        "rxcui_source": rxcui_source,
        "drug_class": row["class"],
        "role": role,
        "min_daily_dose_mg": dose,
        "dose_source": dose_source,
        "names": list(NAMES.get(name, ())),
        "brands": list(BRANDS.get(name, ())),
        "brand_source": "RxNorm-BN" if name in BRANDS else None,
        "non_depression_max_daily_mg": None,
        "non_depression_source": None,
    }
    if name in NON_DEPRESSION:
        limit, src, why = NON_DEPRESSION[name]
        entry["non_depression_max_daily_mg"] = limit
        entry["non_depression_source"] = src
        notes.append(why)
    entry["notes"] = "; ".join(notes) if notes else None
    return entry


CO_MEDICATIONS: tuple[tuple[str, str | None, str, str, str, str], ...] = (
    # (name, RxCUI, RxCUI source, role, class, interaction). Source tags: CPIC = cpic-data
    # drug.sql; 3P = third-party code files (name -> code pairs, unverified); no RxCUI = matched
    # by name only (no source confirmed one). SPRAVATO PI drug interactions: CNS depressants
    # (e.g. benzodiazepines, opioids, alcohol) increase sedation; psychostimulants and MAOIs
    # increase blood pressure.
    ("alprazolam", "596", "3P", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("chlordiazepoxide", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("clobazam", "21241", "CPIC", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("clonazepam", "2598", "3P", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("clorazepate", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("diazepam", "3322", "CPIC", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("estazolam", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("flurazepam", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("lorazepam", "6470", "3P", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("midazolam", "6960", "CPIC", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("oxazepam", "7781", "CPIC", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("temazepam", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("triazolam", None, "", "cns-depressant", "benzodiazepine", "cns-depressant"),
    ("zolpidem", None, "", "cns-depressant", "non-benzodiazepine hypnotic", "cns-depressant"),
    ("eszopiclone", None, "", "cns-depressant", "non-benzodiazepine hypnotic", "cns-depressant"),
    ("zaleplon", None, "", "cns-depressant", "non-benzodiazepine hypnotic", "cns-depressant"),
    ("butalbital", None, "", "cns-depressant", "barbiturate", "cns-depressant"),
    ("phenobarbital", None, "", "cns-depressant", "barbiturate", "cns-depressant"),
    ("pentobarbital", "8004", "3P", "cns-depressant", "barbiturate", "cns-depressant"),
    ("secobarbital", "9624", "3P", "cns-depressant", "barbiturate", "cns-depressant"),
    ("gabapentin", "25480", "3P", "cns-depressant", "gabapentinoid", "cns-depressant"),
    ("pregabalin", None, "", "cns-depressant", "gabapentinoid", "cns-depressant"),
    ("buprenorphine", None, "", "cns-depressant", "opioid", "cns-depressant"),
    ("codeine", "2670", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("fentanyl", "4337", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("hydrocodone", "5489", "3P", "cns-depressant", "opioid", "cns-depressant"),
    ("hydromorphone", "3423", "3P", "cns-depressant", "opioid", "cns-depressant"),
    ("meperidine", "6754", "3P", "cns-depressant", "opioid", "cns-depressant"),
    ("methadone", "6813", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("morphine", "7052", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("oxycodone", "7804", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("oxymorphone", "7814", "3P", "cns-depressant", "opioid", "cns-depressant"),
    ("tapentadol", "787390", "3P", "cns-depressant", "opioid", "cns-depressant"),
    ("tramadol", "10689", "CPIC", "cns-depressant", "opioid", "cns-depressant"),
    ("carisoprodol", "2101", "CPIC", "cns-depressant", "muscle relaxant", "cns-depressant"),
    ("amphetamine", "725", "3P", "psychostimulant", "stimulant", "psychostimulant"),
    ("dextroamphetamine", "3288", "3P", "psychostimulant", "stimulant", "psychostimulant"),
    ("lisdexamfetamine", "700810", "3P", "psychostimulant", "stimulant", "psychostimulant"),
    ("methamphetamine", None, "", "psychostimulant", "stimulant", "psychostimulant"),
    ("methylphenidate", "6901", "CPIC", "psychostimulant", "stimulant", "psychostimulant"),
    ("dexmethylphenidate", "352372", "3P", "psychostimulant", "stimulant", "psychostimulant"),
    ("modafinil", "30125", "CPIC", "psychostimulant", "wakefulness agent", "psychostimulant"),
    ("armodafinil", None, "", "psychostimulant", "wakefulness agent", "psychostimulant"),
    ("rasagiline", None, "", "other", "MAO-B inhibitor", "maoi"),
    ("safinamide", None, "", "other", "MAO-B inhibitor", "maoi"),
    ("linezolid", None, "", "other", "oxazolidinone antibiotic (MAO inhibition)", "maoi"),
    ("methylene blue", "6878", "CPIC", "other", "dye (MAO inhibition)", "maoi"),
    ("procarbazine", "8702", "3P", "other", "antineoplastic (MAO inhibition)", "maoi"),
)
"""Co-medications the esketamine/ketamine order check names (clinical review M7)."""

MAOI_ANTIDEPRESSANTS = (
    "phenelzine",
    "tranylcypromine",
    "isocarboxazid",
    "selegiline",
    "moclobemide",
)
CO_MED_BRANDS: dict[str, tuple[str, ...]] = {
    "alprazolam": ("xanax",),
    "clonazepam": ("klonopin",),
    "diazepam": ("valium",),
    "lorazepam": ("ativan",),
    "zolpidem": ("ambien",),
    "eszopiclone": ("lunesta",),
    "gabapentin": ("neurontin",),
    "pregabalin": ("lyrica",),
    "oxycodone": ("oxycontin", "percocet", "roxicodone"),
    "hydrocodone": ("norco", "vicodin"),
    "buprenorphine": ("suboxone", "subutex"),
    "amphetamine": ("adderall",),
    "lisdexamfetamine": ("vyvanse",),
    "methylphenidate": ("ritalin", "concerta"),
    "modafinil": ("provigil",),
}


def _co_medication(
    name: str, rxcui: str | None, source: str, role: str, drug_class: str, interaction: str
) -> Json:
    return {
        "name": name,
        "rxcui": rxcui,
        "rxcui_source": source or None,
        "drug_class": drug_class,
        "role": role,
        "interaction": interaction,
        "min_daily_dose_mg": None,
        "dose_source": None,
        "names": [],
        "brands": list(CO_MED_BRANDS.get(name, ())),
        "brand_source": "RxNorm-BN" if name in CO_MED_BRANDS else None,
        "non_depression_max_daily_mg": None,
        "non_depression_source": None,
        "notes": "co-medication named at order-sign (SPRAVATO PI drug interactions)"
        + ("" if rxcui else "; no RxCUI confirmed: matched by name"),
    }


def build_ingredients(ref: Reference) -> list[Json]:
    out: list[Json] = []
    for row in ref.tsv("antidepressant_adequate_doses.tsv"):
        raw = row["ingredient"]
        rxcui_cell = row["rxnorm_ingredient_rxcui"]
        if raw.startswith("dextromethorphan / bupropion"):
            # Auvelity: bupropion has its own row; add dextromethorphan only.
            dm = dict(row)
            dm.update(
                {
                    "class": "NMDA antagonist",
                    "atrq_min_daily_dose": "",
                    "dose_source": "",
                    "notes": "",
                    "rxcui_source": "CPIC",
                }
            )
            out.append(_ingredient(dm, "dextromethorphan", "3289"))
            continue
        name = re.sub(r"\s*\(.*\)$", "", raw).strip().lower()
        rxcui = rxcui_cell.split(" ")[0] if rxcui_cell else None
        if rxcui is not None and not rxcui.isdigit():
            raise SystemExit(f"unexpected RxCUI {rxcui_cell!r} for {raw}")
        out.append(_ingredient(row, name, rxcui))
    for entry in out:
        entry["interaction"] = "maoi" if entry["name"] in MAOI_ANTIDEPRESSANTS else None
    out += [_co_medication(*row) for row in CO_MEDICATIONS]
    names = [i["name"] for i in out]
    if len(names) != len(set(names)):
        raise SystemExit(f"duplicate ingredient names: {names}")
    return sorted(out, key=lambda i: i["name"])


STRENGTH_RE = re.compile(r"(\d+(?:\.\d+)?) (MG/HR|MG/ML|MG/ACTUAT|MG)\b")
# bupropion hydrobromide strength -> HCl-equivalent strength (TSV note on bupropion)
BUPROPION_HBR_TO_HCL: dict[float, float] = {174: 150, 348: 300, 522: 450}


def _component(text: str, pattern: re.Pattern[str]) -> Json | None:
    """One ` / `-separated component of an SCD display -> {name, strength_mg} or None."""
    match = STRENGTH_RE.search(text)
    name_part = (text[: match.start()] if match else text).lower()
    found = pattern.findall(name_part)
    if not found:
        return None
    name = max(found, key=len)
    strength: float | None = None
    if match:
        value = float(match.group(1))
        unit = match.group(2)
        if unit == "MG/HR":
            strength = value * 24  # transdermal: mg per 24 h
        elif unit in ("MG", "MG/ML"):
            strength = value
        if name == "bupropion" and "hydrobromide" in name_part and strength is not None:
            if strength not in BUPROPION_HBR_TO_HCL:
                raise SystemExit(f"no HCl equivalent for bupropion HBr {strength} mg")
            strength = BUPROPION_HBR_TO_HCL[strength]
        if "lauroxil" in name_part:
            strength = None  # prodrug ester: labelled strength is not aripiprazole mg
    return {"name": name, "strength_mg": None if strength is None else number(str(strength))}


def parse_product(display: str, pattern: re.Pattern[str]) -> list[Json]:
    """Ingredients and per-unit strengths (tablet, capsule, mL, or 24 h of a patch) of an SCD."""
    if display.startswith("{"):
        # Pack of several strengths (titration pack): ingredients only, no single strength.
        names = sorted(set(pattern.findall(display.lower())))
        return [{"name": n, "strength_mg": None} for n in names]
    parts = [_component(part, pattern) for part in display.split(" / ")]
    result: dict[str, Json] = {}
    for part in parts:
        if part is not None and part["name"] not in result:
            result[part["name"]] = part
    return [result[n] for n in sorted(result)]


def non_depression_use(display: str, ingredients: list[Json]) -> str | None:
    names = {i["name"]: i["strength_mg"] for i in ingredients}
    if "Smoking Cessation" in display:
        return "smoking cessation product (Zyban type); never an antidepressant trial"
    if display.startswith("PMDD "):
        return "PMDD-labelled product (Sarafem type); not an antidepressant trial (DESIGN)"
    if names.get("paroxetine") == 7.5:
        return "paroxetine mesylate 7.5 mg (Brisdelle) is for vasomotor symptoms"
    if names.get("doxepin") in (3, 6) and "Oral Tablet" in display:
        return "doxepin 3/6 mg tablets (Silenor) are a hypnotic"
    if "selegiline" in names and "Transdermal" not in display:
        return "oral selegiline is for Parkinson disease; only the transdermal system is an AD"
    return None


SYNTHEA_PRODUCTS: tuple[tuple[str, str, str, float], ...] = (
    ("406022", "Fluoxetine 25MG", "fluoxetine", 25),
    ("328670", "Sertraline 100MG", "sertraline", 100),
)


def build_products(ref: Reference, ingredients: list[Json]) -> tuple[list[Json], list[str]]:
    pattern = word_re(i["name"] for i in ingredients)
    products: dict[str, Json] = {}
    skipped: list[str] = []
    for oid in DRUG_VALUE_SETS:
        for concept in ref.valueset(oid):
            rxcui, display = concept["code"], concept["display"]
            if rxcui in products:
                continue
            parsed = parse_product(display, pattern)
            if not parsed:
                skipped.append(f"{rxcui} {display}")
                continue
            product: Json = {
                "rxcui": rxcui,
                "display": display,
                "ingredients": parsed,
                "source": vsac(oid),
            }
            reason = non_depression_use(display, parsed)
            if reason:
                product["non_depression_use"] = reason
            products[rxcui] = product
    for rxcui, display, name, strength in SYNTHEA_PRODUCTS:
        if rxcui not in products:
            products[rxcui] = {
                "rxcui": rxcui,
                "display": display,
                "ingredients": [{"name": name, "strength_mg": strength}],
                "source": "3P:Synthea fixtures (fixtures/fhir-r4)",
            }
    return [products[k] for k in sorted(products, key=int)], skipped


def build_drugs(ref: Reference) -> tuple[Json, list[str]]:
    ingredients = build_ingredients(ref)
    products, skipped = build_products(ref, ingredients)
    doc: Json = {
        "version": VERSION,
        "version_history": version_history(
            "Ingredients from antidepressant_adequate_doses.tsv and the co-medications the order "
            "check names (CNS depressants, psychostimulants, MAO inhibitors); products parsed "
            "from the VSAC antidepressant, antipsychotic and CNS-depressant SCD value sets plus "
            "Synthea codes"
        ),
        "sources": {},
        "ingredients": ingredients,
        "products": products,
    }
    doc["sources"] = sources_for(doc, extra=("RREF",))
    return doc, skipped


# ==================================================================================================
# codes.json
# ==================================================================================================


class ListBuilder:
    """Accumulates the codes of one list; the first source that adds a code is kept."""

    def __init__(self, ref: Reference, icd: Icd) -> None:
        self.ref = ref
        self.icd = icd
        self.codes: dict[tuple[str, str], Json] = {}

    def add(self, system: str, code: str, display: str | None, source: str) -> None:
        key = (system, code)
        if key not in self.codes:
            self.codes[key] = {"system": system, "code": code, "display": display, "source": source}

    def add_vs(self, oid: str, keep: Callable[[dict[str, str]], bool] | None = None) -> None:
        for c in self.ref.valueset(oid):
            if keep is None or keep(c):
                self.add(c["system"], c["code"], c["display"], vsac(oid))

    def add_icd(self, code: str, *, descendants: bool = True, source: str = ICD_SRC) -> None:
        for c in self.icd.with_descendants(code) if descendants else [code]:
            self.add(ICD, c, self.icd.description(c), source)

    def add_rows(self, rows: Iterable[dict[str, str]], source: str) -> None:
        for r in rows:
            self.add(r["system"], r["code"], r["display"], source)

    def remove(self, drop: Callable[[Json], bool]) -> list[Json]:
        removed = [c for c in self.codes.values() if drop(c)]
        for c in removed:
            del self.codes[(c["system"], c["code"])]
        return removed

    def has(self, system: str, code: str) -> bool:
        return (system, code) in self.codes

    def sorted_codes(self) -> list[Json]:
        return [self.codes[k] for k in sorted(self.codes)]


def code_list(
    description: str,
    source: str,
    codes: list[Json],
    text_patterns: Iterable[str] = (),
    exclude_patterns: Iterable[str] = (),
) -> Json:
    doc: Json = {
        "description": description,
        "source": source,
        "codes": codes,
        "text_patterns": list(text_patterns),
    }
    if exclude_patterns:
        doc["exclude_patterns"] = list(exclude_patterns)
    return doc


KETAMINE_CDS_CODES = "urn:uuid:b07a9c21-21f6-450f-9d5a-a693390bb067"
"""The code system ketamine-cds owns (an opaque URN: the project has no domain of its own to
name it by; a deploying organisation may map the codes to its order catalogue)."""

NEGATION = (
    r"\b(no|not|denies|denied|denying|without|negative for|never|free of|rules? out|"
    r"ruled out|absence of|no current|no active)\b[^.;]{0,40}"
)
"""A text that negates the concept after it ("denies suicidal ideation", "without suicidal
thoughts", "negative for self-harm"): such a text never matches (codes still do)."""


MDD_FULL_REMISSION_ICD = ("F32.5", "F33.40", "F33.42")
MDD_FULL_REMISSION_SCT = ("42810003", "63412003", "46244001", "68019004")
MDD_PARTIAL_REMISSION = ("F32.4", "F33.41", "30605009", "33135002")
SEVERE_DEPRESSION_SCT = (
    "450714000",
    "75084000",
    "73867007",
    "76441001",
    "430852001",
    "36474008",
    "28475009",
)

NOT_PSYCHOTIC = r"(?<!without )(?<!no )(?<!non-)"
PSYCHOSIS_PATTERNS = (
    r"schizophren",
    r"schizoaffective",
    NOT_PSYCHOTIC + r"\bpsychos[ie]s",
    NOT_PSYCHOTIC + r"\bpsychotic",
)
IN_REMISSION = r"\bin (full )?remission"
DEPRESSION_PATTERNS = tuple(
    p + r"(?!.*" + IN_REMISSION + r")"
    for p in ("major depress", "depressive disorder", "depressive episode")
)
FULL_REMISSION_PATTERNS = (r"depress.*" + IN_REMISSION,)

PATTERN_TESTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # list -> (texts that must match, texts that must not match)
    "psychosis": (
        (
            "Severe major depression with psychotic features",
            "Schizophrenia, unspecified",
            "Schizoaffective disorder",
            "Unspecified psychosis not due to a substance",
            "Brief reactive psychosis",
            "Acute psychoses",
        ),
        (
            "Major depressive disorder, single episode, severe without psychotic features",
            "Manic episode without psychotic symptoms, mild",
            "no psychotic features",
            "non-psychotic depression",
            "on an antipsychotic medication",
            "Major depressive disorder, recurrent, moderate",
        ),
    ),
    "depressive-disorder": (
        (
            "Major depressive disorder, recurrent, moderate",
            "Major depression in partial remission",
            "Major depressive disorder, single episode, in partial remission",
            "Severe depressive episode",
        ),
        (
            "Major depressive disorder, recurrent, in full remission",
            "Recurrent major depression in remission",
            "Major depressive disorder, recurrent, in remission, unspecified",
            "Depression screening",
            "Bipolar disorder, current episode hypomanic",
        ),
    ),
    "depression-full-remission": (
        (
            "Major depressive disorder, recurrent, in full remission",
            "Major depression in remission",
        ),
        ("Major depression in partial remission", "Major depressive disorder, recurrent, mild"),
    ),
    "suicidal-ideation": (
        ("Suicidal ideations", "suicidal thoughts", "passive suicidal ideation"),
        (
            "no suicidal ideation",
            "denies suicidal thoughts",
            "Patient seen; without suicidal ideation",
            "negative for suicidal thoughts",
            "no current suicidal ideation or plan",
            "Nonsuicidal self-harm",
        ),
    ),
    "suicide-attempt-or-self-harm": (
        ("Suicide attempt", "Intentional overdose of benzodiazepine", "self-harm by cutting"),
        ("denies self-harm", "no history of suicide attempt", "Accidental overdose"),
    ),
    "status-reason-remission": (
        ("remission achieved", "In remission", "recovered"),
        ("not in remission", "no remission"),
    ),
    "pregnancy-ended": (
        ("Spontaneous vaginal delivery", "Postpartum care", "Miscarriage"),
        ("Pregnant state", "Supervision of normal first pregnancy"),
    ),
    "status-reason-efficacy": (
        (
            "Ineffective",
            "no response after 8 weeks",
            "non-response",
            "nonresponse",
            "lack of efficacy",
            "Treatment failure",
            "no clinical response",
        ),
        ("Suspected intolerance", "patient preference", "remission"),
    ),
    "status-reason-intolerance": (
        ("Suspected intolerance", "side effects", "Allergy", "not tolerated", "adverse event"),
        ("Ineffective", "cost"),
    ),
    "status-reason-not-failure": (
        (
            "Pregnant",
            "in remission",
            "Cost too high",
            "insurance denied",
            "patient choice",
            "insurance no longer covers - formulary switch",
            "patient preference",
        ),
        ("Ineffective", "side effects"),
    ),
    "route-intravenous": (
        ("Intravenous route", "IV infusion", "given iv over 40 min"),
        ("Intranasal", "Oral route", "divided doses"),
    ),
    "non-depression-indication": (
        ("Insomnia", "Chronic pain", "Smoking cessation", "Hot flashes", "Premenstrual"),
        ("Major depressive disorder", "Spain"),
    ),
    "hypertensive-crisis": (
        ("Hypertensive urgency", "Malignant hypertension", "Hypertensive emergency"),
        ("Essential hypertension", "Hypertensive heart disease"),
    ),
}


def _is_full_remission_sct(display: str) -> bool:
    text = display.lower()
    return "partial" not in text and ("full remission" in text or "in remission" in text)


def _is_severe(display: str) -> bool:
    text = display.lower()
    return "severe" in text and "moderately severe" not in text and "remission" not in text


def _is_psychotic(display: str) -> bool:
    return any(re.search(p, display.lower()) for p in PSYCHOSIS_PATTERNS[2:])


def _intentional_self_harm(code: str) -> bool:
    """ICD-10-CM T36-T65/T71 intent convention: drop the 7th character and trailing X
    placeholders; a final '2' means intentional self-harm (checked over every billable code)."""
    compact = code.replace(".", "")
    if len(compact) == 7:
        compact = compact[:6]
    return compact.rstrip("X").endswith("2")


def build_codes(ref: Reference, icd: Icd) -> tuple[Json, dict[str, list[str]]]:
    lists: dict[str, Json] = {}
    removed_report: dict[str, list[str]] = {}
    bipolar = ref.tsv("bipolar_phase_codes.tsv")
    bp_src = f"{vsac(VS_BIPOLAR)}"

    def new() -> ListBuilder:
        return ListBuilder(ref, icd)

    # ---- depression --------------------------------------------------------------------------
    dep = new()
    for oid in (VS_MAJOR_DEPRESSION, VS_MDD_INCL_REMISSION, VS_DEPRESSION):
        dep.add_vs(oid)
    remission = dep.remove(
        lambda c: (
            c["code"] in MDD_FULL_REMISSION_ICD
            or c["code"] in MDD_FULL_REMISSION_SCT
            or (c["system"] == SCT and _is_full_remission_sct(c["display"]))
        )
    )
    pmdd = dep.remove(lambda c: c["code"] == "F32.81")
    removed_report["depressive-disorder (full remission)"] = [c["code"] for c in remission]
    removed_report["depressive-disorder (PMDD, DESIGN)"] = [c["code"] for c in pmdd]
    for code in (*MDD_PARTIAL_REMISSION, "F34.1", "F53.0"):
        if not any(k[1] == code for k in dep.codes):
            raise SystemExit(f"expected {code} in depressive-disorder")
    bipolar_keys = {(r["system"], r["code"]) for r in bipolar}
    leaked = dep.remove(
        lambda c: c["code"][:3] in ("F30", "F31") or (c["system"], c["code"]) in bipolar_keys
    )
    removed_report["depressive-disorder (bipolar, unipolar pathway only)"] = [
        c["code"] for c in leaked
    ]
    dep_source = ";".join(
        [
            vsac(VS_MAJOR_DEPRESSION),
            vsac(VS_MDD_INCL_REMISSION),
            vsac(VS_DEPRESSION),
            "DESIGN",
        ]
    )
    lists["depressive-disorder"] = code_list(
        "A current unipolar depressive disorder: major depression (single or recurrent, any "
        "severity, including partial remission, which is still depressed), dysthymia, "
        "postpartum depression and unspecified depression. Full or unspecified remission codes "
        "are excluded (see depression-full-remission). Bipolar codes that the VSAC depression "
        "sets carry (F31.30-F31.4, SNOMED CT 67002003) are removed: bipolar disorder is its own "
        "pathway (bipolar-spectrum), never the unipolar TRD one (clinical review M2). F32.81 "
        "premenstrual dysphoric disorder is excluded (DESIGN: it is a non-depression indication, "
        "see non-depression-indication).",
        dep_source,
        dep.sorted_codes(),
        DEPRESSION_PATTERNS,
    )
    rem = new()
    for c in remission:
        rem.add(c["system"], c["code"], c["display"], c["source"])
    lists["depression-full-remission"] = code_list(
        "Major depression in full remission or in remission with unspecified extent: not a "
        "current depressive episode. Partial remission codes are NOT here (still depressed).",
        f"{vsac(VS_MDD_INCL_REMISSION)};{vsac(VS_DEPRESSION)}",
        rem.sorted_codes(),
        FULL_REMISSION_PATTERNS,
    )

    # ---- severe depression -------------------------------------------------------------------
    sev = new()
    for oid in (VS_MAJOR_DEPRESSION, VS_MDD_INCL_REMISSION):
        sev.add_vs(
            oid,
            lambda c: (
                c["code"] in ("F32.2", "F32.3", "F33.2", "F33.3")
                or (c["system"] == SCT and _is_severe(c["display"]))
            ),
        )
    for code in SEVERE_DEPRESSION_SCT:
        if not sev.has(SCT, code):
            raise SystemExit(f"expected SNOMED CT {code} in severe-depression")
    sev.remove(lambda c: (c["system"], c["code"]) in bipolar_keys)
    lists["severe-depression"] = code_list(
        "Severe unipolar depressive episode (with or without psychotic features): ICD-10-CM "
        "F32.2, F32.3, F33.2, F33.3 and every SNOMED CT code of the major depression value sets "
        "whose display says 'severe' ('moderately severe' and remission codes excluded). See "
        "clinical-knowledge C1. Severe bipolar depression is read by the bipolar pathway.",
        f"{vsac(VS_MAJOR_DEPRESSION)};{vsac(VS_MDD_INCL_REMISSION)};CK:C1",
        sev.sorted_codes(),
    )

    # ---- bipolar phases ----------------------------------------------------------------------
    bd = new()
    bd.add_rows((r for r in bipolar if r["phase"] == "depressed"), bp_src)
    lists["bipolar-depressed"] = code_list(
        "Bipolar disorder, current (or most recent) episode depressed, with or without psychotic "
        "features (phase tags of reference/clinical/bipolar_phase_codes.tsv, derived from "
        "display keywords, not clinician-reviewed).",
        f"{bp_src};CK:C2",
        bd.sorted_codes(),
    )
    manic = new()
    manic.add_rows((r for r in bipolar if r["phase"] in ("manic", "hypomanic", "mixed")), bp_src)
    for code in icd.with_descendants("F30")[1:]:
        if code not in ("F30.3", "F30.4"):
            manic.add(ICD, code, icd.description(code), ICD_SRC)
    lists["bipolar-manic-or-hypomanic"] = code_list(
        "Current manic, hypomanic or mixed episode (bipolar TSV phases manic/hypomanic/mixed) and "
        "manic episode F30.x except F30.3/F30.4 (remission).",
        f"{bp_src};{ICD_SRC};CK:C2",
        manic.sorted_codes(),
    )
    unspec = new()
    unspec.add_rows((r for r in bipolar if r["phase"] == "unspecified_or_other"), bp_src)
    lists["bipolar-unspecified-phase"] = code_list(
        "Bipolar disorder with no current-episode phase (e.g. F31.81 bipolar II, F31.89, F31.9, "
        "SNOMED CT 83225003): the phase must come from other evidence.",
        f"{bp_src};CK:C2",
        unspec.sorted_codes(),
    )
    spectrum = new()
    spectrum.add_rows(bipolar, bp_src)
    for code in ("F30", "F31"):
        for icd_code in icd.billable(code):
            spectrum.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    spectrum.add_icd("F34.0", descendants=False)
    lists["bipolar-spectrum"] = code_list(
        "Any bipolar-spectrum diagnosis, in any phase and with any status that is not refuted: "
        "manic episode F30.x (remission included), bipolar disorder F31.x (current episode of "
        "any kind, in remission F31.7x, bipolar II F31.81, other and unspecified), cyclothymic "
        "disorder F34.0, and every code of VSAC Bipolar Disorder. It takes the patient out of "
        "the unipolar TRD and esketamine label pathway (clinical review M2; TRD in the label and "
        "in TRANSFORM is unipolar MDD) and, as a history of mania or hypomania, is a switch risk "
        "shown even when resolved. F32/F33 carry Excludes1 bipolar disorder (ICD10CM-2026).",
        f"{bp_src};{ICD_SRC};CK:C2;DESIGN",
        spectrum.sorted_codes(),
    )

    # ---- psychosis ---------------------------------------------------------------------------
    psy = new()
    psy.add_vs(VS_SCHIZO_OR_PSYCHOTIC)
    psy.add_vs(VS_SCHIZOPHRENIA)
    for code in ("F22", "F24", "F06.0", "F06.2", "F53.1"):
        psy.add_icd(code)
    for oid in (VS_MAJOR_DEPRESSION, VS_MDD_INCL_REMISSION):
        psy.add_vs(oid, lambda c: _is_psychotic(c["display"]))
    psy.add_rows((r for r in bipolar if r["psychotic_features"] == "yes"), bp_src)
    for code in ("F32.3", "F33.3", "F31.2", "F31.5", "F31.64", "F30.2"):
        if not any(k[1] == code for k in psy.codes):
            psy.add_icd(code, descendants=False)
    for sct in ("73867007", "430852001", "28475009"):
        if not psy.has(SCT, sct):
            raise SystemExit(f"expected SNOMED CT {sct} in psychosis")
    substance_psychosis = re.compile(r"psychotic disorder|psychosis")
    for oid in (VS_SUD, VS_SUBSTANCE_ABUSE):
        psy.add_vs(oid, lambda c: bool(substance_psychosis.search(c["display"].lower())))
    lists["psychosis"] = code_list(
        "History of psychosis: schizophrenia, schizoaffective and other psychotic disorders "
        "(including those in remission), delusional disorder F22, shared psychotic disorder F24, "
        "psychotic disorder due to a physiological condition F06.0/F06.2, puerperal psychosis "
        "F53.1, mood disorders with psychotic features (F32.3, F33.3, F31.2, F31.5, F31.64, "
        "F30.2 and SNOMED CT codes whose display says 'with psychotic features'/'with "
        "psychosis') and substance-induced psychotic disorders from the substance value sets.",
        ";".join(
            [
                vsac(VS_SCHIZO_OR_PSYCHOTIC),
                vsac(VS_SCHIZOPHRENIA),
                ICD_SRC,
                vsac(VS_MAJOR_DEPRESSION),
                bp_src,
                vsac(VS_SUD),
                vsac(VS_SUBSTANCE_ABUSE),
                "CK:C3",
            ]
        ),
        psy.sorted_codes(),
        PSYCHOSIS_PATTERNS,
    )

    # ---- suicidality -------------------------------------------------------------------------
    si = new()
    si.add_icd("R45.851", descendants=False)
    for sct, display in (
        ("6471006", "Suicidal thoughts"),
        ("225444004", "At increased risk for suicide"),
        ("247650009", "Suicide plans"),
        ("304594002", "Suicidal intent"),
        ("425104003", "Suicidal behavior"),
    ):
        si.add(SCT, sct, display, "3P:CDC NSSP Suicidal Ideation v1 and SPiER value set pages")
    lists["suicidal-ideation"] = code_list(
        "Suicidal ideation: R45.851 'Suicidal ideations' and SNOMED CT suicidal thoughts, plans, "
        "intent, behaviour and increased suicide risk (SNOMED CT codes from third-party value "
        "sets: check them against a SNOMED CT release before relying on them). A negated text "
        "('denies suicidal ideation', 'without suicidal thoughts') never matches; a refuted "
        "Condition never counts. A PHQ-9 item 9 answer is a screen, read separately.",
        f"{ICD_SRC};3P:CDC NSSP Suicidal Ideation v1 and SPiER value set pages;CK:C8",
        si.sorted_codes(),
        (r"suicidal (ideation|thought|plan|intent)", r"\bsi\b(?! joint)"),
        (NEGATION + r"(suicid|\bsi\b)",),
    )
    harm = new()
    harm.add_icd("T14.91")
    for code in (
        "X71",
        "X72",
        "X73",
        "X74",
        "X75",
        "X76",
        "X77",
        "X78",
        "X79",
        "X80",
        "X81",
        "X82",
        "X83",
    ):
        for icd_code in icd.billable(code):
            harm.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    poisoning = [f"T{n}" for n in range(36, 66)] + ["T71"]
    for category in poisoning:
        for icd_code in icd.billable(category):
            if _intentional_self_harm(icd_code):
                harm.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    for code in ("R45.88", "Z91.51", "Z91.52"):
        harm.add_icd(code, descendants=False)
    for sct, display in (
        ("82313006", "Suicide attempt"),
        ("23233009", "Previous known suicide attempt"),
        ("86849004", "Suicidal poisoning"),
        ("287185009", "Attempted suicide - cut/stab"),
        ("287182007", "Attempted suicide - suffocation"),
        ("44301001", "Suicide"),
        ("248062006", "Self-injurious behavior"),
        ("276853009", "Self inflicted injury"),
    ):
        harm.add(SCT, sct, display, "3P:CDC NSSP Suicide Attempt v1 and SPiER value set pages")
    if not harm.has(ICD, "T58.02XA") or not harm.has(ICD, "T42.4X2A"):
        raise SystemExit("the self-harm poisoning rule missed T58.02XA or T42.4X2A")
    lists["suicide-attempt-or-self-harm"] = code_list(
        "Suicidal behaviour and self-harm: suicide attempt T14.91X(A/D/S), intentional self-harm "
        "X71-X83 (every billable code), intentional self-poisoning and asphyxiation T36-T65 and "
        "T71 whose intent character is 2 (the 7th character dropped and trailing X placeholders "
        "stripped, the last character is 2: the ICD-10-CM intent convention, which a plain "
        "'6th character = 2' test misses in 84 codes such as T58.02XA), nonsuicidal self-harm "
        "R45.88, personal history of suicidal behaviour Z91.51 and of nonsuicidal self-harm "
        "Z91.52, and SNOMED CT suicide attempt and self-injury codes (third-party value sets). "
        "Counts when recorded within self_harm_recent_days; negated texts never match.",
        f"{ICD_SRC};3P:CDC NSSP Suicide Attempt v1 and SPiER value set pages;CK:C8",
        harm.sorted_codes(),
        (
            r"suicide attempt",
            r"attempted suicide",
            r"self[- ]?harm",
            r"self[- ]?injur",
            r"intentional (self|overdose)",
        ),
        (NEGATION + r"(suicid|self)",),
    )

    # ---- hypertensive crisis -----------------------------------------------------------------
    htn = new()
    htn.add_icd("I16")
    htn.add_vs(VS_ELEVATED_BP, lambda c: c["code"] == "443482000")
    htn.add_vs(VS_DX_HYPERTENSION, lambda c: "malignant" in c["display"].lower())
    for sct in ("443482000", "70272006"):
        if not htn.has(SCT, sct):
            raise SystemExit(f"expected SNOMED CT {sct} in hypertensive-crisis")
    lists["hypertensive-crisis"] = code_list(
        "Hypertensive crisis: I16.x hypertensive urgency/emergency/crisis, SNOMED CT 443482000 "
        "hypertensive urgency and the malignant hypertension codes (70272006 and the other "
        "'malignant' codes) of VSAC Diagnosis of Hypertension. A plain hypertension diagnosis "
        "is not 'uncontrolled': use blood-pressure readings.",
        f"{ICD_SRC};{vsac(VS_ELEVATED_BP)};{vsac(VS_DX_HYPERTENSION)};CK:C5",
        htn.sorted_codes(),
        (r"hypertensive (crisis|urgency|emergency)", r"malignant hypertension"),
    )
    enc = new()
    enc.add_icd("I67.4", descendants=False)
    lists["hypertensive-encephalopathy"] = code_list(
        "History of hypertensive encephalopathy, at any time: the SPRAVATO label asks for more "
        "intensive blood-pressure and symptom monitoring in these patients (warnings, increase "
        "in blood pressure).",
        f"{ICD_SRC};SPV-PI",
        enc.sorted_codes(),
        (r"hypertensive encephalopathy",),
    )

    # ---- serious heart disease ---------------------------------------------------------------
    heart = new()
    heart.add_vs(VS_HEART_FAILURE)
    heart.add_vs(VS_ACUTE_MI)
    heart.add_vs(VS_ANGINA, lambda c: c["code"] in ("I20.0", "4557003"))
    heart.add_icd("I24")
    heart.add_icd("I47.2")
    for code in ("I49.01", "I49.02", "I44.2", "I45.81"):
        heart.add_icd(code, descendants=False)
    lists["serious-heart-disease"] = code_list(
        "Serious heart disease: heart failure, acute myocardial infarction (I21/I22, 'recent' "
        "needs the onset date), unstable angina (I20.0, SNOMED CT 4557003 preinfarction "
        "syndrome), other acute ischaemic heart disease I24.x, ventricular tachycardia I47.2x, "
        "ventricular fibrillation/flutter I49.01/I49.02, complete AV block I44.2 and long QT "
        "I45.81. NOT included: atrial fibrillation/flutter, stable or unspecified angina, old "
        "myocardial infarction I25.2.",
        f"{vsac(VS_HEART_FAILURE)};{vsac(VS_ACUTE_MI)};{vsac(VS_ANGINA)};{ICD_SRC};CK:C6",
        heart.sorted_codes(),
    )

    recent = new()
    recent.add_icd("I25.2", descendants=False)
    recent.add_icd("I63")
    recent.add_icd("G45")
    lists["recent-cardiovascular-event"] = code_list(
        "Myocardial infarction recorded as old MI (I25.2: problem lists move an MI there after 4 "
        "weeks), cerebral infarction I63.x and transient ischaemic attack G45.x: serious heart "
        "or cerebrovascular disease when recorded within recent_cardiac_event_days, otherwise a "
        "cardiovascular condition to assess (clinical review S6).",
        f"{ICD_SRC};SPV-PI",
        recent.sorted_codes(),
    )
    cv = new()
    for code in ("I42", "I25.1", "I69.3"):
        cv.add_icd(code)
    for code in ("I35.0", "I35.2", "Z86.73"):
        cv.add_icd(code, descendants=False)
    lists["cardiovascular-condition"] = code_list(
        "Other cardiovascular and cerebrovascular conditions the label asks to assess carefully "
        "before prescribing (warnings, increase in blood pressure): cardiomyopathy I42.x, "
        "coronary atherosclerosis I25.1x, aortic stenosis I35.0/I35.2, sequelae of cerebral "
        "infarction I69.3x and history of TIA or cerebral infarction Z86.73.",
        f"{ICD_SRC};SPV-PI",
        cv.sorted_codes(),
    )
    liver = new()
    for code in ("K72", "K70.3", "K70.4", "K74.6", "I85"):
        liver.add_icd(code)
    for code in ("K76.6", "K76.7", "K76.81", "K76.82", "R18.8", "K71.11"):
        liver.add_icd(code, descendants=False)
    lists["hepatic-impairment"] = code_list(
        "Cirrhosis or hepatic decompensation: hepatic failure K72.x, alcoholic cirrhosis "
        "K70.3x, alcoholic hepatic failure K70.4x, other cirrhosis K74.6x, oesophageal varices "
        "I85.x, portal hypertension K76.6, hepatorenal K76.7, hepatopulmonary K76.81, hepatic "
        "encephalopathy K76.82, ascites R18.8, toxic liver disease with necrosis and coma "
        "K71.11. SPRAVATO is not recommended in severe hepatic impairment (Child-Pugh C) and "
        "needs longer monitoring in moderate impairment; ICD-10-CM has no Child-Pugh class, so "
        "the class must be verified (clinical review S6).",
        f"{ICD_SRC};SPV-PI",
        liver.sorted_codes(),
    )

    # ---- aneurysm / AVM ----------------------------------------------------------------------
    aneu = new()
    aneu.add_vs(VS_AORTIC_ANEURYSM)
    aneu.add_vs(VS_AORTIC_DISSECTION)
    aneu.add_icd("I67.1", descendants=False)
    aneu.add_icd("I72")
    aneu.add_vs(
        VS_CEREBRAL_VASCULAR_LESION,
        lambda c: (
            c["code"] in ("Q28.0", "Q28.2")
            or (c["system"] == SCT and "arteriovenous malformation" in c["display"].lower())
        ),
    )
    aneu.add_icd("Q28.3")
    aneu.add_icd("Q27.3")
    for sct in ("234142008", "277299009", "204493007", "261482004"):
        if not aneu.has(SCT, sct):
            raise SystemExit(f"expected SNOMED CT {sct} in aneurysm-or-avm")
    lists["aneurysm-or-avm"] = code_list(
        "Aneurysmal vascular disease or arteriovenous malformation (SPRAVATO contraindication): "
        "aortic aneurysm and dissection, nonruptured cerebral aneurysm I67.1, other arterial "
        "aneurysms I72.x, AVM of precerebral/cerebral vessels Q28.0/Q28.2, other cerebral vessel "
        "malformations Q28.3, peripheral AVM Q27.3x and every SNOMED CT 'arteriovenous "
        "malformation' code of VSAC Cerebral Vascular Lesion (cerebral, precerebral, spinal, "
        "ruptured or not).",
        ";".join(
            [
                vsac(VS_AORTIC_ANEURYSM),
                vsac(VS_AORTIC_DISSECTION),
                ICD_SRC,
                vsac(VS_CEREBRAL_VASCULAR_LESION),
                "SPV-PI",
                "CK:C7",
            ]
        ),
        aneu.sorted_codes(),
    )

    # ---- intracranial haemorrhage ------------------------------------------------------------
    ich = new()
    ich.add_vs(VS_HEMORRHAGIC_STROKE)
    for code in ("I61", "I60", "I69.1", "I69.0", "S06.34", "S06.35", "S06.36"):
        ich.add_icd(code)
    ich.add_icd("I62.9", descendants=False)
    for sct in ("274100004", "230710000", "20908003"):
        if not ich.has(SCT, sct):
            raise SystemExit(f"expected SNOMED CT {sct} in intracerebral-hemorrhage")
    lists["intracerebral-hemorrhage"] = code_list(
        "History of intracerebral haemorrhage (SPRAVATO contraindication): nontraumatic "
        "intracerebral haemorrhage I61.x, its sequelae I69.1x, unspecified nontraumatic "
        "intracranial haemorrhage I62.9, traumatic intracerebral haemorrhage S06.34-S06.36 (any "
        "7th character: the label's 'history of intracerebral hemorrhage' does not limit the "
        "cause; S06.36 includes 'traumatic intracerebral hemorrhage and hematoma') and the SNOMED "
        "CT codes of VSAC Hemorrhagic Stroke. Subarachnoid haemorrhage I60.x (and its sequelae "
        "I69.0x) is included conservatively as intracranial haemorrhage: a DESIGN decision. "
        "Match resolved and inactive Conditions too.",
        f"{vsac(VS_HEMORRHAGIC_STROKE)};{ICD_SRC};SPV-PI;CK:C7;DESIGN",
        ich.sorted_codes(),
    )
    other_ich = new()
    for code in ("S06.37", "S06.38", "S06.4", "S06.5", "S06.6", "I62.0", "I69.2"):
        other_ich.add_icd(code)
    other_ich.add_icd("I62.1", descendants=False)
    lists["intracranial-hemorrhage-other"] = code_list(
        "Other intracranial haemorrhage, at any time: traumatic cerebellar and brainstem "
        "haemorrhage S06.37-/S06.38-, epidural S06.4-, traumatic subdural S06.5-, traumatic "
        "subarachnoid S06.6-, nontraumatic subdural I62.0x, extradural I62.1 and sequelae of "
        "other nontraumatic intracranial haemorrhage I69.2x. Not a label contraindication, but "
        "a patient 'for whom an increase in blood pressure or intracranial pressure poses a "
        "serious risk' (label warning; clinical review M6).",
        f"{ICD_SRC};SPV-PI",
        other_ich.sorted_codes(),
    )

    # ---- substance use disorder --------------------------------------------------------------
    sud = new()
    sud.add_vs(VS_SUD)
    dropped = sud.remove(
        lambda c: (
            "remission" in c["display"].lower()
            or c["code"].startswith("F17")
            or "nicotine" in c["display"].lower()
            or "tobacco" in c["display"].lower()
        )
    )
    removed_report["substance-use-disorder-active (remission/nicotine)"] = [
        c["code"] for c in dropped
    ]
    mild = sud.remove(
        lambda c: (
            c["system"] == ICD and not c["code"].startswith("F16") and c["code"][4:5] in ("1", "9")
        )
    )
    for category in ("F10", "F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19"):
        for icd_code in icd.billable(category):
            if (icd_code[4:5] == "2" and icd_code[4:6] != "21") or (
                icd_code.startswith("F16") and icd_code[4:6] not in ("11", "21", "91")
            ):
                sud.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    lists["substance-use-disorder-active"] = code_list(
        "Active moderate or severe substance use disorder: dependence F1x.2x (DSM-5 moderate or "
        "severe use disorder by the ICD-10-CM inclusion terms; remission F1x.21 excluded) for "
        "alcohol, opioids, cannabis, sedatives, cocaine, other stimulants, inhalants and other "
        "substances; every active hallucinogen code F16.x (phencyclidine and similar substances, "
        "the family of ketamine); and the SNOMED CT codes of VSAC Substance Use Disorder, whose "
        "severity is not stated. No nicotine (F17). A label warning (abuse and misuse), not a "
        "contraindication.",
        f"{vsac(VS_SUD)};{ICD_SRC};CK:C4",
        sud.sorted_codes(),
    )
    mild_list = new()
    for c in mild:
        mild_list.add(c["system"], c["code"], c["display"], c["source"])
    for category in ("F10", "F11", "F12", "F13", "F14", "F15", "F18", "F19"):
        for icd_code in icd.billable(category):
            if icd_code[4:5] in ("1", "9") and icd_code[4:6] not in ("11", "91"):
                mild_list.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    lists["substance-use-disorder-mild"] = code_list(
        "Active mild or unspecified substance use: abuse F1x.1x (DSM-5 mild use disorder by the "
        "inclusion terms) and use F1x.9x, not in remission, except hallucinogens (F16, always "
        "in substance-use-disorder-active). The label asks for careful consideration and a "
        "risk assessment, not exclusion (clinical review S5): a caution.",
        f"{vsac(VS_SUD)};{ICD_SRC};CK:C4",
        mild_list.sorted_codes(),
    )
    remission_sud = new()
    for category in ("F10", "F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19"):
        for icd_code in icd.billable(category):
            if icd_code[4:6] in ("11", "21", "91"):
                remission_sud.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    remission_sud.add_vs(VS_SUBSTANCE_ABUSE, lambda c: "remission" in c["display"].lower())
    lists["substance-use-disorder-remission"] = code_list(
        "Substance use disorder in remission (F1x.11, F1x.21, F1x.91 and the remission codes of "
        "VSAC Substance Abuse), alcohol included: the label advises careful consideration in "
        "patients with a history of substance use disorder (clinical review S5): a caution, "
        "prominent for hallucinogens and phencyclidine (F16).",
        f"{ICD_SRC};{vsac(VS_SUBSTANCE_ABUSE)};SPV-PI",
        remission_sud.sorted_codes(),
    )
    hallucinogen = new()
    hallucinogen.add_icd("F16")
    lists["hallucinogen-use-disorder"] = code_list(
        "Hallucinogen related disorders F16.x (the ICD-10-CM family of phencyclidine and similar "
        "substances; ketamine use disorder is coded here): named prominently wherever a "
        "substance use disorder is shown.",
        f"{ICD_SRC};DESIGN",
        hallucinogen.sorted_codes(),
    )
    alcohol = new()
    for icd_code in icd.billable("F10"):
        if icd_code[4:6] not in ("11", "21", "91"):
            alcohol.add(ICD, icd_code, icd.description(icd_code), ICD_SRC)
    lists["alcohol-use-disorder-active"] = code_list(
        "Active alcohol use disorder (F10 except remission): a CNS-depressant exposure for the "
        "order-sign sedation warning (label: CNS depressants, e.g. benzodiazepines, opioids, "
        "alcohol).",
        f"{ICD_SRC};SPV-PI",
        alcohol.sorted_codes(),
    )

    # ---- pregnancy / breastfeeding -----------------------------------------------------------
    preg = new()
    preg.add_vs(
        VS_PREGNANCY,
        lambda c: not (c["system"] == ICD and c["code"][:3] in ("O90", "O91", "O92", "Z39")),
    )
    preg.add_vs(VS_PREGNANT_STATE)
    preg.add(SCT, "72892002", "Normal pregnancy", "3P:Synthea and IPS examples")
    preg.add(SCT, "77386006", "Pregnant", "3P:Synthea and IPS examples")
    lists["pregnancy"] = code_list(
        "Pregnancy: VSAC Pregnancy without the puerperium/lactation codes O90-O92 and without "
        "Z39.x postpartum care, plus VSAC Pregnant State. Codes need date logic (onset or "
        "recorded date within the pregnancy window, no delivery since).",
        f"{vsac(VS_PREGNANCY)};{vsac(VS_PREGNANT_STATE)};3P:Synthea and IPS examples;CK:C8",
        preg.sorted_codes(),
    )
    bf = new()
    bf.add_vs(VS_BREASTFEEDING, lambda c: c["code"] not in ("O92.5", "169643005"))
    lists["breastfeeding"] = code_list(
        "Currently breastfeeding / lactating: VSAC Breastfeeding without O92.5 'Suppressed "
        "lactation' and SNOMED CT 169643005 'Feeding intention - breast' (neither means "
        "currently breastfeeding).",
        f"{vsac(VS_BREASTFEEDING)};CK:C8",
        bf.sorted_codes(),
    )
    ended = new()
    for code in ("Z37", "Z39", "O60.1", "O60.2", "O00", "O01", "O02", "O03", "O04", "O08"):
        ended.add_icd(code)
    for code in ("O80", "O82", "Z33.2"):
        ended.add_icd(code, descendants=False)
    lists["pregnancy-ended"] = code_list(
        "A pregnancy that ended: delivery (O80, O82, outcome of delivery Z37.x, preterm or term "
        "delivery O60.1x/O60.2x), postpartum care (Z39.x), an abortive outcome (O00-O04, O08) "
        "or an elective termination (Z33.2). A pregnancy code recorded before one of these is "
        "closed (clinical-knowledge C8: 'no delivery since'; clinical review S11). Not included: "
        "O07 failed attempted termination and O31.1/O31.3 continuing pregnancy.",
        f"{ICD_SRC};CK:C8",
        ended.sorted_codes(),
        (r"\bdelivery\b", r"postpartum", r"miscarriage", r"abortion", r"\bliveborn"),
    )

    # ---- indications -------------------------------------------------------------------------
    nd = new()
    for code in ("G47.0", "F51.0", "F17.2", "M79.7", "G89", "G43", "F42"):
        nd.add_icd(code)
    for code in ("Z72.0", "N95.1", "R23.2", "F32.81"):
        nd.add_icd(code, descendants=False)
    lists["non-depression-indication"] = code_list(
        "MedicationRequest.reasonCode codes meaning the drug was not prescribed for depression: "
        "insomnia (G47.0x, F51.0x), nicotine dependence/tobacco use (F17.2x, Z72.0), "
        "fibromyalgia M79.7, pain G89.x, migraine G43.x, obsessive-compulsive disorder F42.x, "
        "menopausal vasomotor symptoms N95.1, flushing R23.2 and premenstrual dysphoric "
        "disorder F32.81. Chosen by the project (DESIGN) from the non-depression uses listed in "
        "clinical-knowledge E2 and the TSV notes.",
        f"{ICD_SRC};DESIGN",
        nd.sorted_codes(),
        (
            r"insomnia",
            r"\bsleep",
            r"smoking",
            r"nicotine",
            r"tobacco",
            r"\bpain",
            r"fibromyalgia",
            r"migraine",
            r"neuropath",
            r"obsessive",
            r"hot flash",
            r"vasomotor",
            r"premenstrual",
        ),
    )
    ind = new()
    for c in dep.sorted_codes() + rem.sorted_codes():
        ind.add(c["system"], c["code"], c["display"], c["source"])
    lists["depression-indication"] = code_list(
        "MedicationRequest.reasonCode codes meaning the drug was prescribed for depression: the "
        "depressive-disorder codes plus the full-remission codes (maintenance treatment of "
        "depression is still a depression indication; DESIGN).",
        f"{dep_source}",
        ind.sorted_codes(),
        (r"depress",),
    )

    # ---- observations ------------------------------------------------------------------------
    def single(system: str, code: str, display: str, source: str) -> list[Json]:
        return [{"system": system, "code": code, "display": display, "source": source}]

    phq = new()
    phq.add_vs(VS_PHQ9)
    lists["phq9-total"] = code_list(
        "PHQ-9 total score (and PHQ-9 modified for teens).", vsac(VS_PHQ9), phq.sorted_codes()
    )
    lists["phq9-item9"] = code_list(
        "PHQ-9 item 9 (thoughts that you would be better off dead or of hurting yourself).",
        "3P:FHIR PHQ-9 Questionnaires",
        single(
            LOINC,
            "44260-8",
            "Thoughts that you would be better off dead, or of hurting yourself in some way",
            "3P:FHIR PHQ-9 Questionnaires",
        ),
    )
    lists["phq9-panel"] = code_list(
        "PHQ-9 panel: an Observation whose components are the item answers and the total "
        "(item 9 and the total are read from them).",
        "LOINC",
        single(
            LOINC,
            "44249-1",
            "PHQ-9 quick depression assessment panel [Reported.PHQ]",
            "LOINC",
        ),
    )
    lists["bp-panel"] = code_list(
        "Blood-pressure panel Observations whose components carry systolic/diastolic values.",
        "3P:US Core blood-pressure profile;3P:Synthea",
        [
            {
                "system": LOINC,
                "code": "55284-4",
                "display": "Blood pressure systolic and diastolic",
                "source": "3P:Synthea",
            },
            {
                "system": LOINC,
                "code": "85354-9",
                "display": "Blood pressure panel with all children optional",
                "source": "3P:US Core blood-pressure profile",
            },
        ],
    )
    sbp = new()
    sbp.add_vs(VS_SYSTOLIC_BP)
    lists["bp-systolic"] = code_list(
        "Systolic blood pressure (Observation.code or a panel component).",
        vsac(VS_SYSTOLIC_BP),
        sbp.sorted_codes(),
    )
    lists["bp-diastolic"] = code_list(
        "Diastolic blood pressure (Observation.code or a panel component).",
        "3P:US Core and Synthea",
        single(LOINC, "8462-4", "Diastolic blood pressure", "3P:US Core and Synthea"),
    )
    wt = new()
    wt.add_vs(VS_BODY_WEIGHT)
    lists["body-weight"] = code_list(
        "Body weight (for the ketamine mg/kg dose check).", vsac(VS_BODY_WEIGHT), wt.sorted_codes()
    )
    lists["pregnancy-status"] = code_list(
        "Pregnancy status Observation.",
        "3P:IPS pregnancy-status examples",
        single(LOINC, "82810-3", "Pregnancy status", "3P:IPS pregnancy-status examples"),
    )
    lists["pregnant-value"] = code_list(
        "Pregnancy-status value meaning pregnant.",
        "3P:IPS examples",
        single(SCT, "77386006", "Pregnant", "3P:IPS examples"),
    )
    lists["not-pregnant-value"] = code_list(
        "Pregnancy-status value meaning not pregnant.",
        "3P:IPS examples",
        single(SCT, "60001007", "Not pregnant", "3P:IPS examples"),
    )

    # ---- status reasons ----------------------------------------------------------------------
    def reasons(pairs: Iterable[tuple[str, str]]) -> list[Json]:
        return [
            {"system": STATUS_REASON_SYSTEM, "code": code, "display": display, "source": "FHIR-R4"}
            for code, display in sorted(pairs)
        ]

    lists["status-reason-intolerance"] = code_list(
        "Stop reasons meaning intolerance or allergy: a tolerability failure, which does not by "
        "itself prove an adequate trial (clinical-knowledge A3.4). Common antidepressant side "
        "effects named in free text count; a negated text ('no side effects') never matches "
        "(clinical review S4).",
        "FHIR-R4;CK:A3.4",
        reasons([("sintol", "Suspected intolerance"), ("salg", "Allergy")]),
        (
            r"intoleran",
            r"side[- ]effect",
            r"adverse",
            r"allerg",
            r"(not|poorly|couldn'?t|could not|unable to) tolerat",
            r"toxicity",
            r"nausea",
            r"vomit",
            r"sexual (dysfunction|side)",
            r"weight gain",
            r"sedat",
            r"drows",
            r"dizz",
            r"headache",
            r"\brash\b",
            r"hyponatr",
            r"qtc? prolong",
        ),
        (NEGATION + r"(intoleran|side[- ]effect|adverse|allerg|nausea|toxicity)",),
    )
    lists["status-reason-efficacy"] = code_list(
        "Stop reasons meaning lack of efficacy. The FHIR R4 status-reason code system has no "
        "efficacy code, so only text patterns are used (clinical-knowledge A3.4: treat "
        "'ineffective' or 'no response' as an efficacy failure).",
        "FHIR-R4;DESIGN",
        [],
        (
            r"ineffective",
            r"not effective",
            r"no (clinical )?response",
            r"non-?response",
            r"lack of (efficacy|effect|response)",
            r"inadequate response",
            r"no improvement",
            r"not improving",
            r"treatment failure",
            r"failed",
        ),
    )
    lists["status-reason-not-failure"] = code_list(
        "Stop reasons that are neither an efficacy nor a tolerability failure (pregnancy, "
        "hospital admission, surgery, washout, patient not available, clarification, duplicate "
        "therapy, drug level too high, try another treatment first, drug interaction, lab "
        "interference; remission, cost, insurance, patient choice).",
        "FHIR-R4;CK:A3.4;DESIGN",
        reasons(
            [
                ("preg", "Parent is pregnant/breast feeding"),
                ("hospadm", "Admission to hospital"),
                ("surg", "Patient scheduled for surgery."),
                ("washout", "Waiting for old drug to wash out"),
                ("non-avail", "Patient not available"),
                ("clarif", "Prescription requires clarification"),
                ("sdupther", "Duplicate therapy"),
                ("drughigh", "Drug level too high"),
                ("altchoice", "Try another treatment first"),
                ("sddi", "Drug interacts with another drug"),
                ("labint", "Lab interference issues"),
            ]
        ),
        (
            r"pregnan",
            r"remission",
            r"remitted",
            r"recovered",
            r"\bcost",
            r"insurance",
            r"formulary",
            r"not covered",
            r"patient (choice|preference|declined|request)",
            r"prefer",
        ),
        (NEGATION + r"(remission|remitted|recovered)",),
    )
    lists["status-reason-remission"] = code_list(
        "Stop reasons that document remission or recovery: the episode ends there, and failures "
        "before it belong to a previous episode (clinical review M9).",
        "DESIGN",
        [],
        (r"remission", r"remitted", r"recovered", r"\bwell\b", r"symptom[- ]free"),
        (NEGATION + r"(remission|remitted|recovered|well|symptom)",),
    )
    lists["route-intravenous"] = code_list(
        "Intravenous route of administration (ketamine IV dose check).",
        "3P:FHIR route of administration value set, SNOMED CT",
        single(
            SCT,
            "47625008",
            "Intravenous route",
            "3P:FHIR route of administration value set, SNOMED CT",
        ),
        (r"intravenous", r"\biv\b", r"infusion"),
    )
    lists["route-intramuscular"] = code_list(
        "Intramuscular route (ketamine IM/SC dose check, not the IV one).",
        "3P:FHIR route of administration value set, SNOMED CT",
        [
            {
                "system": SCT,
                "code": "78421000",
                "display": "Intramuscular route",
                "source": "3P:FHIR route of administration value set, SNOMED CT",
            },
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                "code": "IM",
                "display": "Injection, intramuscular",
                "source": "3P:FHIR route of administration value set, SNOMED CT",
            },
        ],
        (r"intramuscular", r"\bim\b"),
    )
    lists["route-subcutaneous"] = code_list(
        "Subcutaneous route (ketamine IM/SC dose check, not the IV one).",
        "3P:FHIR route of administration value set, SNOMED CT",
        single(
            SCT,
            "34206005",
            "Subcutaneous route",
            "3P:FHIR route of administration value set, SNOMED CT",
        ),
        (r"subcutaneous", r"\bs\.?c\.?\b", r"subq", r"sub-?cut"),
    )
    lists["route-nasal"] = code_list(
        "Nasal route (esketamine nasal spray).",
        "3P:FHIR route of administration value set, SNOMED CT",
        single(
            SCT,
            "46713006",
            "Nasal route",
            "3P:FHIR route of administration value set, SNOMED CT",
        ),
        (r"nasal", r"intranasal"),
    )

    # ---- referrals ------------------------------------------------------------------------------
    lists["ketamine-evaluation-referral"] = code_list(
        "Referral for evaluation for esketamine (SPRAVATO) or ketamine treatment: the code of "
        "the code system the service owns (no SNOMED CT or LOINC concept for this referral was "
        "found; a generic psychiatry referral, SNOMED CT 183524004, says nothing about ketamine), "
        "which the referral suggestion's ServiceRequest carries, and the words clinicians write "
        "in a referral they order themselves. A negated text never matches.",
        "DESIGN",
        single(
            KETAMINE_CDS_CODES,
            "ketamine-esketamine-evaluation",
            "Evaluation for esketamine or ketamine treatment",
            "DESIGN",
        ),
        (r"\b(es)?ketamine\b", r"spravato", r"ketalar"),
        (NEGATION + r"((es)?ketamine|spravato|ketalar)",),
    )

    for name, code_list_doc in lists.items():
        code_list_doc["applies_to"] = _applies_to(name)

    for name, code_list_doc in lists.items():
        code_list_doc["applies_to"] = _applies_to(name)

    doc: Json = {
        "version": VERSION,
        "version_history": version_history(
            "Clinical safety review 2026-11: unipolar depression and bipolar-spectrum lists, "
            "suicidal ideation with negation and self-harm (intent convention), intracranial "
            "haemorrhage breadth, hypertensive encephalopathy, cardiovascular and hepatic "
            "conditions, substance use disorder by severity and remission, pregnancy end, "
            "remission stop reasons, routes"
        ),
        "sources": {},
        "lists": lists,
    }
    doc["sources"] = sources_for(doc)
    return doc, removed_report


APPLIES_TO: dict[str, tuple[str, ...]] = {
    "Condition.code": (
        "depressive-disorder",
        "depression-full-remission",
        "severe-depression",
        "bipolar-depressed",
        "bipolar-manic-or-hypomanic",
        "bipolar-unspecified-phase",
        "bipolar-spectrum",
        "psychosis",
        "suicidal-ideation",
        "suicide-attempt-or-self-harm",
        "hypertensive-crisis",
        "hypertensive-encephalopathy",
        "serious-heart-disease",
        "recent-cardiovascular-event",
        "cardiovascular-condition",
        "hepatic-impairment",
        "aneurysm-or-avm",
        "intracerebral-hemorrhage",
        "intracranial-hemorrhage-other",
        "substance-use-disorder-active",
        "substance-use-disorder-mild",
        "substance-use-disorder-remission",
        "hallucinogen-use-disorder",
        "alcohol-use-disorder-active",
        "pregnancy",
        "breastfeeding",
        "pregnancy-ended",
    ),
    "Medication.reasonCode": ("non-depression-indication", "depression-indication"),
    "Observation.code": (
        "phq9-total",
        "phq9-item9",
        "phq9-panel",
        "bp-panel",
        "bp-systolic",
        "bp-diastolic",
        "body-weight",
        "pregnancy-status",
    ),
    "Observation.value": ("pregnant-value", "not-pregnant-value"),
    "Medication.statusReason": (
        "status-reason-intolerance",
        "status-reason-efficacy",
        "status-reason-not-failure",
        "status-reason-remission",
    ),
    "ServiceRequest.code": ("ketamine-evaluation-referral",),
    "Dosage.route": (
        "route-intravenous",
        "route-intramuscular",
        "route-subcutaneous",
        "route-nasal",
    ),
}
"""Which element of which resource each code list is matched against. The service's relevance
filter keeps a Condition only if some ``Condition.code`` list matches it, so a list the
diagnosis rules read must be here (a list in no group, or in two, stops the build)."""


def _applies_to(name: str) -> str:
    groups = [element for element, names in APPLIES_TO.items() if name in names]
    if len(groups) != 1:
        raise SystemExit(f"code list {name!r} must be in exactly one APPLIES_TO group: {groups}")
    return groups[0]


def check_patterns(codes_doc: Json) -> None:
    for name, (positives, negatives) in PATTERN_TESTS.items():
        code_list = codes_doc["lists"][name]
        patterns = [re.compile(p) for p in code_list["text_patterns"]]
        excludes = [re.compile(p) for p in code_list.get("exclude_patterns", [])]

        def matches(
            text: str,
            patterns: list[re.Pattern[str]] = patterns,
            excludes: list[re.Pattern[str]] = excludes,
        ) -> bool:
            lowered = text.lower()
            return any(p.search(lowered) for p in patterns) and not any(
                e.search(lowered) for e in excludes
            )

        for text in positives:
            if not matches(text):
                raise SystemExit(f"text pattern self-test: {name} should match {text!r}")
        for text in negatives:
            if matches(text):
                raise SystemExit(f"text pattern self-test: {name} should not match {text!r}")


# ==================================================================================================
# main
# ==================================================================================================


def render(doc: Json) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def validate(out_dir: Path) -> str:
    """Load the written files with the service's own loader; return a one-line summary."""
    sys.path.insert(0, str(REPO_ROOT))
    from hooks.rules.knowledge import load_knowledge

    k = load_knowledge(out_dir)
    return (
        f"ruleset {k.ruleset_version}: {len(k.ingredients)} ingredients, "
        f"{len(k.products_by_rxcui)} products, {len(k.lists)} code lists"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        help=f"shared folder holding reference/ (default: {DEFAULT_SHARED})",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the files are out of date"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print removed codes etc.")
    args = parser.parse_args(argv)

    ref = Reference(args.shared)
    icd = Icd()
    drugs, skipped = build_drugs(ref)
    codes, removed = build_codes(ref, icd)
    check_patterns(codes)
    rendered = {
        "drugs.json": render(drugs),
        "codes.json": render(codes),
    }

    if args.check:
        stale = [
            name
            for name, text in rendered.items()
            if not (args.out / name).is_file()
            or (args.out / name).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)} (run scripts/build_knowledge.py)")
            return 1
        print("knowledge files are up to date")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (args.out / name).write_text(text, encoding="utf-8")
    if args.verbose:
        print(f"skipped {len(skipped)} value-set products with no known ingredient:")
        for line in skipped:
            print(f"  {line}")
        for what, codes_removed in removed.items():
            print(f"removed from {what}: {', '.join(codes_removed) or '-'}")
        for name, cl in codes["lists"].items():
            print(f"  {name}: {len(cl['codes'])} codes, {len(cl['text_patterns'])} patterns")
    print(f"wrote {', '.join(rendered)} to {args.out}")
    print(validate(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
