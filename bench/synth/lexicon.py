"""Invented clinical vocabulary for the synthetic corpora. No real patient text anywhere.

Each concept group lists surface forms; `ABBREVIATED` gives the short forms some sites prefer.
AMBIGUOUS words are written as tests in one context and treatments in another, so a model
must read the context, not memorise the word.
"""

from __future__ import annotations

PROBLEMS = {
    "cardiac": [
        "chest pain",
        "atrial fibrillation",
        "congestive heart failure",
        "hypertension",
        "coronary artery disease",
        "palpitations",
        "syncope",
        "bradycardia",
        "angina",
    ],
    "pulmonary": [
        "shortness of breath",
        "pneumonia",
        "copd exacerbation",
        "hypoxia",
        "wheezing",
        "pleural effusion",
        "pulmonary embolism",
        "cough",
        "respiratory failure",
    ],
    "renal": [
        "acute kidney injury",
        "chronic kidney disease",
        "hyperkalemia",
        "urinary tract infection",
        "hyponatremia",
        "dehydration",
        "oliguria",
    ],
    "general": [
        "fever",
        "nausea",
        "abdominal pain",
        "diabetes mellitus",
        "sepsis",
        "anemia",
        "delirium",
        "fatigue",
        "headache",
        "cellulitis",
        "gi bleed",
        "weight loss",
    ],
}
TESTS = {
    "cardiac": ["ekg", "echocardiogram", "troponin", "cardiac catheterization", "stress test", "bnp"],
    "pulmonary": ["chest x-ray", "ct chest", "arterial blood gas", "sputum culture", "oxygen saturation"],
    "renal": ["creatinine", "urinalysis", "renal ultrasound", "bun", "urine culture"],
    "general": ["cbc", "blood cultures", "lactate", "white count", "hemoglobin", "ct abdomen", "inr"],
}
TREATMENTS = {
    "cardiac": [
        "aspirin",
        "metoprolol",
        "lisinopril",
        "atorvastatin",
        "nitroglycerin",
        "amiodarone",
        "cardiac stent",
        "furosemide",
    ],
    "pulmonary": ["albuterol nebs", "prednisone", "azithromycin", "bipap", "intubation", "levofloxacin", "chest tube"],
    "renal": ["iv fluids", "hemodialysis", "kayexalate", "sodium bicarbonate", "foley catheter"],
    "general": [
        "vancomycin",
        "ceftriaxone",
        "acetaminophen",
        "morphine",
        "ondansetron",
        "pantoprazole",
        "blood transfusion",
        "heparin drip",
        "physical therapy",
    ],
}
AMBIGUOUS = ["potassium", "magnesium", "insulin", "calcium", "glucose", "oxygen"]
ABBREVIATED = {
    "shortness of breath": "sob",
    "hypertension": "htn",
    "coronary artery disease": "cad",
    "congestive heart failure": "chf",
    "atrial fibrillation": "afib",
    "diabetes mellitus": "dm",
    "acute kidney injury": "aki",
    "chronic kidney disease": "ckd",
    "urinary tract infection": "uti",
    "chest x-ray": "cxr",
    "echocardiogram": "echo",
    "arterial blood gas": "abg",
    "iv fluids": "ivf",
    "blood transfusion": "prbc transfusion",
    "physical therapy": "pt eval",
}
NEGATIONS = ["denies", "no", "negative for", "no evidence of", "without", "ruled out for"]
FIRST_NAMES = [
    "Avery",
    "Jordan",
    "Quinn",
    "Rowan",
    "Emerson",
    "Harper",
    "Sasha",
    "Kendall",
    "Morgan",
    "Blake",
    "Reese",
    "Dakota",
    "Logan",
    "Skyler",
    "Parker",
    "Ellis",
]
LAST_NAMES = [
    "Fenwick",
    "Alder",
    "Brightwater",
    "Corley",
    "Dunmore",
    "Easton",
    "Galloway",
    "Hartwell",
    "Ingram",
    "Kessler",
    "Lockridge",
    "Marlowe",
    "Northcott",
    "Pemberton",
]
HOSPITALS = ["Riverbend Medical Center", "Lakeside General", "Saint Orla Hospital", "Northgate Clinic"]
CITIES = [("Maple Falls", "ME"), ("Cedar Point", "OH"), ("Willow Creek", "OR"), ("Stonebridge", "VT")]
PROFESSIONS = ["teacher", "carpenter", "accountant", "nurse", "farmer", "engineer", "chef", "driver"]
# Written only in test documents: a model must recognise them from context, as with the many
# concepts of a real test set that the training notes never mention.
HELD_OUT = {
    "P": [
        "necrotizing fasciitis",
        "aortic dissection",
        "pancreatitis",
        "myasthenia crisis",
        "sarcoidosis",
        "endocarditis",
        "cholangitis",
        "tamponade",
    ],
    "T": ["lipase", "ferritin", "mri brain", "lumbar puncture", "d-dimer", "procalcitonin", "eeg"],
    "R": ["ivig", "plasmapheresis", "octreotide", "clopidogrel", "meropenem", "thrombolysis", "labetalol"],
}
# Modifiers that belong inside the concept span ("severe chest pain" is one problem).
MODIFIERS = {
    "P": ["acute", "chronic", "severe", "mild", "worsening", "recurrent", "bilateral", "new"],
    "T": ["repeat", "serial", "portable", "stat"],
    "R": ["iv", "oral", "low dose", "home"],
}
