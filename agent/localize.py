"""The parts of a recommendation answer the graph writes itself, in the user's language.

A small model asked to answer in French often writes only the config line (or English, which a
translation then has to carry); these sections are built from the recommendation's facts with
fixed phrases per language, so a French user gets the reasons, the alternatives and the similar
runs in French, every number exactly as the tools wrote it, without a second LLM call.

    sections(facts, "fr", have=draft)   # "**Pourquoi** : …\n\n### Alternatives\n- **Plus rapide** : …"
    phrase("de", "budget_question")

English answers keep the card's own sections (`agent.nodes.ground.completed`).
"""

from __future__ import annotations

import re
from typing import Any

LANGUAGES = ("fr", "de", "es", "it", "pt")

_P: dict[str, dict[str, str]] = {
    "fr": {
        "interval": "intervalle à 80 %",
        "recommended": "Recommandé",
        "predicted": "précision prédite",
        "time": "temps d'entraînement",
        "on": "sur",
        "rough": "estimation approximative",
        "why": "Pourquoi",
        "lead": "les facteurs les plus forts (SHAP, points de précision)",
        "alternatives": "Alternatives",
        "faster": "Plus rapide",
        "more_accurate": "Plus précis",
        "runner_up": "Deuxième choix",
        "similar": "Entraînements passés similaires",
        "test_acc": "précision de test",
        "published": "publié",
        "own": "entraînement local",
        "user": "votre run",
        "pretrained": "préentraîné",
        "scratch": "depuis zéro",
        "points": "points",
        "no_faster": "aucune config plus rapide à moins de {n} points de la meilleure",
        "budget_question": (
            "Sur quoi allez-vous entraîner, et pendant combien de temps ? Nommez le GPU (ou "
            "dites CPU seulement, ou mon portable) et le temps disponible ; j'ai supposé "
            "une heure au plus sur le CPU de cette machine, et je reclasserai pour le "
            "vôtre."),
        "time_question": (
            "Combien de temps peut durer l'entraînement ? J'ai supposé une heure au plus "
            "sur le CPU ; donnez-moi le temps disponible et je reclasserai."),
        "assumed_size": (
            "Vous n'avez pas donné la taille des images : j'ai supposé {px} px ; donnez la "
            "vraie taille pour affiner."),
    },
    "de": {
        "interval": "80 % Intervall",
        "recommended": "Empfohlen",
        "predicted": "vorhergesagte Genauigkeit",
        "time": "Trainingszeit",
        "on": "auf",
        "rough": "grobe Schätzung",
        "why": "Warum",
        "lead": "die stärksten Faktoren (SHAP, Genauigkeitspunkte)",
        "alternatives": "Alternativen",
        "faster": "Schneller",
        "more_accurate": "Genauer",
        "runner_up": "Zweite Wahl",
        "similar": "Ähnliche frühere Trainingsläufe",
        "test_acc": "Testgenauigkeit",
        "published": "veröffentlicht",
        "own": "eigener Lauf",
        "user": "Ihr Lauf",
        "pretrained": "vortrainiert",
        "scratch": "ohne Vortraining",
        "points": "Punkte",
        "no_faster": "keine schnellere Konfiguration innerhalb von {n} Punkten der besten",
        "budget_question": (
            "Worauf werden Sie trainieren, und wie lange? Nennen Sie die GPU (oder nur CPU, "
            "oder mein Laptop) und die verfügbare Zeit; ich habe höchstens eine Stunde auf "
            "der CPU dieses Rechners angenommen und ordne für Ihre neu."),
        "time_question": (
            "Wie lange darf das Training dauern? Ich habe höchstens eine Stunde auf der CPU "
            "angenommen; nennen Sie die verfügbare Zeit, dann ordne ich neu."),
        "assumed_size": (
            "Sie haben die Bildgröße nicht genannt, daher habe ich {px} px angenommen; "
            "nennen Sie die echte Größe, um dies zu verfeinern."),
    },
    "es": {
        "interval": "intervalo del 80 %",
        "recommended": "Recomendado",
        "predicted": "precisión predicha",
        "time": "tiempo de entrenamiento",
        "on": "en",
        "rough": "estimación aproximada",
        "why": "Por qué",
        "lead": "los factores más fuertes (SHAP, puntos de precisión)",
        "alternatives": "Alternativas",
        "faster": "Más rápida",
        "more_accurate": "Más precisa",
        "runner_up": "Segunda opción",
        "similar": "Entrenamientos anteriores similares",
        "test_acc": "precisión de test",
        "published": "publicado",
        "own": "entrenamiento propio",
        "user": "su ejecución",
        "pretrained": "preentrenado",
        "scratch": "desde cero",
        "points": "puntos",
        "no_faster": "ninguna configuración más rápida a menos de {n} puntos de la mejor",
        "budget_question": (
            "¿En qué va a entrenar y durante cuánto tiempo? Indique la GPU (o diga solo "
            "CPU, o mi portátil) y el tiempo disponible; supuse como máximo una hora en la "
            "CPU de esta máquina, y volveré a ordenar para el suyo."),
        "time_question": (
            "¿Cuánto tiempo puede durar el entrenamiento? Supuse como máximo una hora en la "
            "CPU; indique el tiempo disponible y volveré a ordenar."),
        "assumed_size": (
            "No indicó el tamaño de las imágenes, así que supuse {px} px; indique el tamaño "
            "real para afinarlo."),
    },
    "it": {
        "interval": "intervallo dell'80 %",
        "recommended": "Consigliato",
        "predicted": "accuratezza prevista",
        "time": "tempo di addestramento",
        "on": "su",
        "rough": "stima approssimativa",
        "why": "Perché",
        "lead": "i fattori più forti (SHAP, punti di accuratezza)",
        "alternatives": "Alternative",
        "faster": "Più veloce",
        "more_accurate": "Più accurata",
        "runner_up": "Seconda scelta",
        "similar": "Addestramenti passati simili",
        "test_acc": "accuratezza di test",
        "published": "pubblicato",
        "own": "addestramento locale",
        "user": "la sua esecuzione",
        "pretrained": "pre-addestrato",
        "scratch": "da zero",
        "points": "punti",
        "no_faster": "nessuna configurazione più veloce entro {n} punti dalla migliore",
        "budget_question": (
            "Su cosa addestrerà, e per quanto tempo? Indichi la GPU (o dica solo CPU, o il "
            "mio portatile) e il tempo disponibile; ho supposto al massimo un'ora sulla CPU "
            "di questa macchina, e riordinerò per il suo."),
        "time_question": (
            "Quanto può durare l'addestramento? Ho supposto al massimo un'ora sulla CPU; "
            "indichi il tempo disponibile e riordinerò."),
        "assumed_size": (
            "Non ha indicato la dimensione delle immagini, quindi ho supposto {px} px; "
            "indichi la dimensione reale per affinare."),
    },
    "pt": {
        "interval": "intervalo de 80 %",
        "recommended": "Recomendado",
        "predicted": "precisão prevista",
        "time": "tempo de treino",
        "on": "em",
        "rough": "estimativa aproximada",
        "why": "Porquê",
        "lead": "os fatores mais fortes (SHAP, pontos de precisão)",
        "alternatives": "Alternativas",
        "faster": "Mais rápida",
        "more_accurate": "Mais precisa",
        "runner_up": "Segunda opção",
        "similar": "Treinos anteriores semelhantes",
        "test_acc": "precisão de teste",
        "published": "publicado",
        "own": "treino próprio",
        "user": "sua execução",
        "pretrained": "pré-treinado",
        "scratch": "do zero",
        "points": "pontos",
        "no_faster": "nenhuma configuração mais rápida a menos de {n} pontos da melhor",
        "budget_question": (
            "Em que vai treinar, e durante quanto tempo? Indique a GPU (ou diga só CPU, ou "
            "o meu portátil) e o tempo disponível; supus no máximo uma hora no CPU desta "
            "máquina, e vou reordenar para o seu."),
        "time_question": (
            "Quanto tempo pode durar o treino? Supus no máximo uma hora no CPU; indique o "
            "tempo disponível e vou reordenar."),
        "assumed_size": (
            "Não indicou o tamanho das imagens, por isso supus {px} px; indique o tamanho "
            "real para refinar."),
    },
}

# The explanation's factor labels (`knowledge.metalearner.features`), the common ones.
_FACTORS: dict[str, dict[str, str]] = {
    "images per class": {"fr": "images par classe", "de": "Bilder pro Klasse",
                         "es": "imágenes por clase", "it": "immagini per classe",
                         "pt": "imagens por classe"},
    "training scheme": {"fr": "schéma d'entraînement", "de": "Trainingsschema",
                        "es": "esquema de entrenamiento", "it": "schema di addestramento",
                        "pt": "esquema de treino"},
    "training images": {"fr": "images d'entraînement", "de": "Trainingsbilder",
                        "es": "imágenes de entrenamiento", "it": "immagini di addestramento",
                        "pt": "imagens de treino"},
    "input resolution": {"fr": "résolution d'entrée", "de": "Eingabeauflösung",
                         "es": "resolución de entrada", "it": "risoluzione di input",
                         "pt": "resolução de entrada"},
    "model": {"fr": "modèle", "de": "Modell", "es": "modelo", "it": "modello", "pt": "modelo"},
    "epochs": {"fr": "époques", "de": "Epochen", "es": "épocas", "it": "epoche", "pt": "épocas"},
    "class entropy (bits)": {"fr": "entropie des classes (bits)", "de": "Klassenentropie (Bits)",
                             "es": "entropía de clases (bits)", "it": "entropia delle classi (bit)",
                             "pt": "entropia das classes (bits)"},
    "modality": {"fr": "modalité", "de": "Modalität", "es": "modalidad", "it": "modalità",
                 "pt": "modalidade"},
    "native image size": {"fr": "taille native des images", "de": "native Bildgröße",
                          "es": "tamaño nativo de las imágenes", "it": "dimensione nativa",
                          "pt": "tamanho nativo das imagens"},
    "classes": {"fr": "classes", "de": "Klassen", "es": "clases", "it": "classi", "pt": "classes"},
    "class imbalance (largest/smallest)": {
        "fr": "déséquilibre des classes (plus grande/plus petite)",
        "de": "Klassenungleichgewicht (größte/kleinste)",
        "es": "desequilibrio de clases (mayor/menor)",
        "it": "squilibrio delle classi (maggiore/minore)",
        "pt": "desequilíbrio das classes (maior/menor)"},
    "batch size": {"fr": "taille de lot", "de": "Batchgröße", "es": "tamaño de lote",
                   "it": "dimensione del batch", "pt": "tamanho do lote"},
}
_SCHEMES = {"end_to_end": "end-to-end", "linear_probing": "linear probe", "knn": "kNN"}


def supported(lang: str | None) -> bool:
    return lang in _P


def phrase(lang: str, key: str, **values: Any) -> str:
    """A fixed phrase in `lang` (keys of `_P`), formatted with `values`."""
    return _P[lang][key].format(**values)


# The words of a factor's value ("mean 1,125", "missing", "224 px (0.44 of native)").
_VALUE_WORDS: dict[str, dict[str, str]] = {
    "mean": {"fr": "moyenne", "de": "Mittel", "es": "media", "it": "media", "pt": "média"},
    "missing": {"fr": "inconnue", "de": "unbekannt", "es": "desconocida", "it": "sconosciuta",
                "pt": "desconhecida"},
    "of native": {"fr": "de la taille native", "de": "der nativen Größe", "es": "del nativo",
                  "it": "della nativa", "pt": "do nativo"},
}


def factor_text(text: str, lang: str) -> str:
    """'images per class mean 1,125 → −2.4 points' in `lang` (the label, the value's words and
    'points'; the numbers stay as the tools wrote them)."""
    for label in sorted(_FACTORS, key=len, reverse=True):
        if text.startswith(label):
            text = _FACTORS[label][lang] + text[len(label):]
            break
    for word, words in _VALUE_WORDS.items():
        text = re.sub(rf"\b{word}\b", words[lang], text)
    return re.sub(r"\bpoints$", _P[lang]["points"], text)


def _config(f: dict[str, Any], lang: str) -> str:
    weights = _P[lang]["pretrained"] if f["pretrained"] else _P[lang]["scratch"]
    return (f"{f['model_name']}, {weights}, {_SCHEMES.get(f['scheme'], f['scheme'])}, "
            f"{f['resolution_px']} px, lr {f['lr']:.0e}, {f['epochs']} {_FACTORS['epochs'][lang]}")


def time_text(text: str, lang: str) -> str:
    """'14 min on t4 (rough estimate)' in `lang` (the numbers and the device as written)."""
    text = text.replace(" (rough estimate)", f" ({_P[lang]['rough']})")
    return re.sub(r" on (?=\S+(?: \(|$))", f" {_P[lang]['on']} ", text)


def _outcome(f: dict[str, Any], lang: str) -> str:
    return f"{f['predicted_accuracy_pct']} %, ~{time_text(f['training_time'], lang)}"


def _run(line: str, lang: str) -> str:
    line = line.replace("test acc", _P[lang]["test_acc"])
    return re.sub(r"\((published|own|user)\)$", lambda m: f"({_P[lang][m.group(1)]})", line)


def sections(facts: dict[str, Any], lang: str, have: str = "", *,
             faster_within: float | None = None) -> str:
    """The why / alternatives / similar-runs sections in `lang` that the answer `have` lacks
    (judged by the section's own words: a draft that already gives SHAP points keeps its own)."""
    p, parts, lowered = _P[lang], [], have.lower()
    english = {"alternatives": ("alternative", "faster"), "similar": ("similar", "test acc")}
    if facts.get("why") and not re.search(r"points|punkte|puntos|punti|pontos|shap", lowered):
        parts.append(f"**{p['why']}** — {p['lead']}: "
                     + "; ".join(factor_text(w, lang) for w in facts["why"][:3]) + ".")
    alternatives = []
    if facts.get("faster_alternative"):
        f = facts["faster_alternative"]
        alternatives.append(f"- **{p['faster']}**: {_config(f, lang)} — {_outcome(f, lang)}")
    elif faster_within is not None and facts.get("chosen_for") == "accuracy":
        alternatives.append(f"- **{p['faster']}**: {phrase(lang, 'no_faster', n=f'{faster_within:g}')}")
    for key, word in (("more_accurate_alternative", "more_accurate"),
                      ("runner_up_alternative", "runner_up")):
        if facts.get(key):
            alternatives.append(f"- **{p[word]}**: {_config(facts[key], lang)} — "
                                f"{_outcome(facts[key], lang)}")
    if alternatives and not any(w in lowered for w in (p["alternatives"].lower(),
                                                       p["faster"].lower(), *english["alternatives"])):
        parts.append("\n".join([f"### {p['alternatives']}", *alternatives]))
    runs = facts.get("similar_past_runs") or []
    if runs and not any(w in lowered for w in (p["similar"].lower(), p["test_acc"].lower(),
                                               *english["similar"])):
        parts.append("\n".join([f"### {p['similar']}", *(f"- {_run(r, lang)}" for r in runs[:3])]))
    return "\n\n".join(parts)


def headline(facts: dict[str, Any], lang: str) -> str:
    """The recommended config in one line: every setting, the prediction and the time."""
    r, p = facts["recommended"], _P[lang]
    lo, hi = r["interval_80_pct"]
    return (f"{p['recommended']}: **{_config(r, lang)}**, {r['optimizer']}, batch {r['batch_size']}, "
            f"weight decay {r['weight_decay']:g}, augmentation {r['augmentation']} — {p['predicted']} "
            f"{r['predicted_accuracy_pct']} % ({p['interval']}: {lo}–{hi} %), {p['time']} "
            f"~{time_text(r['training_time'], lang)}.")


def card(facts: dict[str, Any], lang: str, *, faster_within: float | None = None) -> str:
    """The whole recommendation in `lang`: the headline and every section. A 1.5B model asked to
    write it in French or German mistranslated the settings ("trainiert" for pretrained,
    "peso de descarga" for weight decay, "taux d'apprentissage 85.6 %" for the accuracy)."""
    return headline(facts, lang) + "\n\n" + sections(facts, lang, faster_within=faster_within)


__all__ = ["LANGUAGES", "card", "factor_text", "headline", "phrase", "sections", "supported", "time_text"]
