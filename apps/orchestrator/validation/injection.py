"""Prompt-injection detection: the patterns that flag instructions aimed at the router.

Heuristics, not a lookup: each signal is a few patterns that need instruction-like context
(an imperative aimed at the assistant, a reference to its instructions or to our routing
fields), so that "please ignore my previous email" or "route 66 store" pass. The patterns
run over a view of the text that undoes cheap obfuscation: invisible characters, NFKC,
case, accents, look-alike Cyrillic/Greek letters, leetspeak inside words and s p a c e d
letters. A match is a signal for the pipeline to weigh, never a refusal.
"""

import base64
import binascii
import re
import unicodedata
from typing import Literal, get_args
from urllib.parse import unquote

from apps.orchestrator.validation.characters import hidden_payloads, strip_invisible

SignalName = Literal[
    "ignore_instructions",
    "role_override",
    "prompt_exfiltration",
    "routing_manipulation",
    "delimiter_injection",
    "encoding_tricks",
]
SIGNAL_NAMES: tuple[SignalName, ...] = get_args(SignalName)

_CONFUSABLES = str.maketrans(
    "аеёіїјкорсухѕԁԛԝһɡαεικνορτυχ",
    "aeeiijkopcyxsdqwhgaeiknoptux",
)
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_TOKEN = re.compile(r"(?<![\w@$])(?=[\w@$]*[a-z])(?=[\w@$]*[013457@$])[\w@$]+")  # 1gn0r3
_QUOTES = {ord(ch): "'" for ch in "\u2018\u2019\u201a\u201b\u00b4"} | {
    ord(ch): '"' for ch in "\u201c\u201d\u201e\u201f\u00ab\u00bb"
}
_SPACED = re.compile(r"(?<![\w])[a-z](?:(?:[ .\-_*|/+]|  +)[a-z](?![a-z])){3,}")
# The words s p a c e d-out letters are split back into when they were typed without gaps.
_VOCABULARY = frozenset({
    "ignore", "disregard", "forget", "all", "any", "every", "your", "the", "previous", "prior",
    "above", "earlier", "instructions", "instruction", "rules", "prompt", "system", "you",
    "are", "now", "reveal", "show", "print", "me", "route", "this", "to", "set", "confidence",
    "pool", "classify", "as", "act", "developer", "mode", "jailbreak", "new", "and", "refund",
    "billing", "technical", "everything", "repeat", "tell", "what", "were", "told", "respond",
    "with", "json", "pretend", "a", "an", "i", "is", "of", "be", "in", "my", "ticket",
    "message", "output", "initial", "secret", "hidden", "admin", "override",
})  # fmt: skip


def _segment(letters: str) -> str | None:
    """Split a run of letters into vocabulary words, or None when it does not split cleanly."""
    if len(letters) > 400:
        return None
    word_start: list[int | None] = [0] + [None] * len(letters)  # where the last word begins
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - 12), end):
            if word_start[start] is not None and letters[start:end] in _VOCABULARY:
                word_start[end] = start
                break
    words: list[str] = []
    end = len(letters)
    while end:
        begin = word_start[end]
        if begin is None:
            return None
        words.append(letters[begin:end])
        end = begin
    return " ".join(reversed(words))


def _unspace(match: re.Match[str]) -> str:
    words = [re.sub(r"[ .\-_*|/+]", "", w) for w in re.split(r"  +", match.group())]
    if len(words) == 1:
        return _segment(words[0]) or words[0]
    return " ".join(words)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    )


def _views(text: str) -> tuple[str, tuple[str, ...]]:
    """The text as lines (casefolded, plain quotes) and flat variants (de-obfuscated, one line)."""
    plain = unicodedata.normalize("NFKC", strip_invisible(text))
    lines = _strip_accents(plain.casefold()).translate(_QUOTES).translate(_CONFUSABLES)
    flat = re.sub(r"[*~]+", "", lines)
    flat = re.sub(r"(?<=[a-z])[._](?=[a-z])", " ", flat)  # ignore_all, IGNORE.ALL
    flats = [flat]
    if "1" in flat:  # "1" stands for "i" (1gnore) as often as for "l" (ru1es)
        flats.append(flat.replace("1", "l"))
    return lines, tuple(
        " ".join(
            _SPACED.sub(_unspace, _LEET_TOKEN.sub(lambda m: m.group().translate(_LEET), f)).split()
        )
        for f in flats
    )


_W = r"(?:[\w'-]+\s+)"  # one filler word
_NOT_MINE = (
    r"(?:(?!(?:my|our|me|mine|i|we)\b)[\w'-]+\s+)"  # a filler word that is not the customer's own
)

_IGNORE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overlook"
    r"|discard|abandon|drop|set aside|throw out|do not follow|don'?t follow|stop following"
    r"|no longer follow|stop obeying|cancel|erase|delete|skip)"
)
_IGNORE_QUAL = (
    r"(?:previous|previously|prior|above|earlier|preceding|former|original|initial|old|existing"
    r"|system|all|any|every|your)"
)
_IGNORE_NOUN = (
    r"(?:instructions?|rules?|prompts?|directives?|guidelines?|guardrails?|constraints?"
    r"|programming|commands|restrictions?|filters?|training|context|system prompt|safety rules)"
)
_NOT_ABOUT_MINE = (
    r"(?!\s+(?:that\s+|which\s+)?(?:i|we)\b)"
    r"(?!\s+(?:about|regarding|concerning|re|for|on)\s+(?:my|our|the|this)\s+(?:order|delivery"
    r"|shipping|shipment|address|parcel|package|account|booking|payment|subscription|invoice"
    r"|return|refund)\b)"
)
_ROLE_NOUN = (
    r"(?:assistant|ai|bot|chatbot|model|llm|agent|router|classifier|system|persona|character"
    r"|hacker|admin|administrator|developer|expert|translator|terminal|interpreter|version|gpt"
    r"|\w+gpt|dan|jailbreak|jailbroken)"
)
_EXF_VERB = (
    r"(?:reveal|print|show|display|output|repeat|tell|give|share|leak|dump|write out|write down"
    r"|spell out|recite|paste|copy|echo|expose|disclose|list|send|provide|return|read back"
    r"|read out|summari[sz]e|translate|what(?:'s| is| are| was| were))"
)
_EXF_OBJECT = (
    r"(?:system (?:prompt|message|instructions?)|(?:initial|original|hidden|secret|internal"
    r"|developer|confidential|full|exact|complete) (?:system )?(?:prompt|instructions|rules"
    r"|message)"
    r"|pre-?prompt|meta-?prompt"
    r"|your prompt(?!\s+(?:reply|response|answer|attention|help|action|assistance|service"
    r"|payment|refund|delivery|feedback|support))"
    r"|your (?:instructions|rules|guidelines|directives|configuration|prompt)\s+(?:verbatim"
    r"|word for word|in full|exactly|above|you (?:were|have been) given)"
    r"|(?:the )?(?:text|words|instructions|message|messages|everything|content) (?:above"
    r"|before this)"
    r"|your (?:first|initial|opening) (?:message|instructions|lines?)"
    r"|(?:the )?above (?:prompt|instructions|rules|system message)"
    r"|instructions you (?:were|have been) given|what you were told"
    r"|the (?:beginning|start) of (?:this|the|your) (?:conversation|prompt|context))"
)
_TURN_START = r"(?:(?m:^)\s*|[.!?]\s+)"  # a line start or a sentence start
_IMPERATIVE_START = (
    r"(?:^|[.!?;:\n]\s*|\b(?:please|now|only|always|just|you (?:must|should|will|shall)|"
    r"i (?:want|need) you to)\s+)"
)

_PATTERNS: dict[str, tuple[str, ...]] = {
    "ignore_instructions": (
        rf"\b{_IGNORE_VERB}\s+{_NOT_MINE}{{0,3}}?{_IGNORE_QUAL}\s+"
        rf"{_NOT_MINE}{{0,3}}?{_IGNORE_NOUN}\b{_NOT_ABOUT_MINE}",
        rf"\b{_IGNORE_VERB}\s+(?:the|all|any|your)\s+{_W}{{0,2}}?{_IGNORE_NOUN}\s+(?:above"
        r"|before this|you (?:were|have been) given|given to you|from (?:your|the) (?:developers?"
        r"|creators?|system|operators?))",
        rf"\b{_IGNORE_VERB}\s+(?:about\s+)?(?:all\s+)?(?:of\s+)?(?:everything|anything|all"
        r"|it all)\s+(?:you(?:'ve| have)? (?:been )?(?:told|given|read|learned|learnt|know)|above"
        r"|before this|(?:that )?(?:came|comes|was said|you were told) (?:before|above)|prior"
        r"|previously|so far|until now)",
        r"\b(?:all |your |the )?(?:previous |prior |earlier |above |system "
        r"|original )+(?:instructions|rules|prompts?|directives) (?:are|were|have been"
        r"|is) (?:now )?(?:void|null|cancell?ed|revoked|obsolete|overridden|replaced|invalid"
        r"|no longer (?:valid|active|apply|relevant))",
        # French, German, Spanish
        r"\b(?:ignore[rz]?|oublie[rz]?|ne (?:tiens|tenez) (?:pas"
        r"|plus) compte d[e'])\s*(?:[\w'-]+\s+){0,3}?(?:instructions|consignes|regles"
        r"|directives|indications)\s+(?:precedentes|anterieures|ci-dessus|initiales|d'avant"
        r"|du systeme|systeme)",
        r"\b(?:ignore[rz]?|oublie[rz]?|ne (?:tiens|tenez) (?:pas"
        r"|plus) compte d[e'])\s*(?:toutes\s+)?(?:tes|vos)\s+(?:\w+\s+)?(?:instructions|consignes"
        r"|regles|directives)",
        r"\boublie[rz]? tout ce (?:qu'on t'a dit|que tu sais|qui precede|que l'on t'a dit"
        r"|qu'on vous a dit)",
        r"\b(?:ignoriere|ignorier|ignorieren sie|vergiss|vergessen sie|missachte"
        r"|missachten sie)\s+(?:\w+\s+){0,2}?(?:alle|deine|ihre|die vorherigen|vorherigen"
        r"|bisherigen|obigen|vorigen|vorangegangenen|fruheren"
        r"|system)\s+(?:\w+\s+){0,2}?(?:anweisungen|instruktionen|regeln|vorgaben|befehle"
        r"|richtlinien|anordnungen|systemanweisungen)",
        r"\bvergiss alles,? (?:was|bisher|vorher|oben)",
        r"\b(?:ignora|ignore|ignorad|ignoren|olvida|olvide|olvidate de|olvidad"
        r"|haz caso omiso (?:de|a)|no hagas caso (?:de|a)|omite"
        r"|descarta)\s+(?:\w+\s+){0,2}?(?:(?:todas? )?(?:tus|sus)"
        r"|todas las)\s+(?:\w+\s+)?(?:instrucciones|reglas|indicaciones|directrices|ordenes"
        r"|normas)",
        r"\b(?:ignora|ignore|ignorad|ignoren|olvida|olvide|olvidate de|olvidad"
        r"|haz caso omiso (?:de|a)|no hagas caso (?:de|a)|omite"
        r"|descarta)\s+(?:\w+\s+){0,2}?(?:instrucciones|reglas|indicaciones|directrices|ordenes"
        r"|normas)\s+(?:anteriores|previas|de arriba|del sistema|iniciales|originales)",
        r"\bolvida (?:todo lo (?:que|anterior)|lo anterior)",
    ),
    "role_override": (
        r"\byou(?:'re| are) (?:now|no longer|from now on|henceforth)\s+(?:an? |the "
        r"|my )(?!(?:\w+\s+)?(?:first|second|third|fourth|fifth|last|only|\d+(?:st|nd|rd"
        rf"|th))\b){_W}{{0,3}}?{_ROLE_NOUN}\b",
        r"\byou(?:'re| are) (?:now |no longer )?(?:in |an? )?(?:unrestricted|unfiltered"
        r"|uncensored|jailbroken|free of (?:all )?(?:rules|restrictions)|dan\b|evil)",
        r"\byou(?:'re| are) (?:now )?in (?:developer|dev|god|jailbreak|unrestricted|admin|debug"
        r"|sudo|maintenance|test|dan) mode",
        r"\bfrom now on,?\s+(?:you\s+(?:are|act|must (?:act|respond|answer|reply|ignore|obey|only"
        r"|always)|will (?:act|respond|answer|reply|ignore|obey|only|always|be)|have no)"
        r"|your (?:new )?(?:role|persona|purpose|instructions) (?:is|are)|ignore|disregard"
        r"|respond only|only respond|answer only|always respond)",
        r"(?:\byou\s+(?:will\s+|must\s+|should\s+|shall\s+|can\s+|now\s+|are to\s+)?"
        r"|\b(?:i (?:want|need) you to|you'?re going to|i order you to)\s+|(?:^"
        r"|[.!?;:\n]\s*)(?:now\s+|please\s+|ok(?:ay)?,?\s+)?)(?:act|behave|roleplay"
        r"|role-play)\s+(?:as|like)\b",
        rf"\b(?:imagine|suppose|assume)\s+(?:that\s+)?you(?:'re| are| were)\s+(?:now\s+)?(?:an?"
        rf"|the)\s+{_W}{{0,3}}?{_ROLE_NOUN}\b",
        rf"\byou(?:'re| are) an? {_W}{{0,3}}?{_ROLE_NOUN} (?:that|who|which) (?:(?:always|only"
        r"|must|will) )*(?:routes?|classif|approves?|assigns?|escalates?|ignores?|obeys?|reveals?"
        r"|compl(?:y|ies)|grants?)",
        r"(?<!don't )(?<!do not )(?<!stop )\bpretend\s+(?:that\s+)?(?:you(?:'re| are)|to be"
        r"|you have no)\b",
        r"\b(?:roleplay|role-play|role play) as\b",
        r"\b(?:new|updated|revised|real|actual|true|override|overriding|secret|hidden"
        r"|admin) (?:system )?(?:instructions?|rules|directives|prompt|task|role|persona)\s*[:\-]",
        r"\bsystem (?:override|prompt|instructions?|message|note|update|notice|directive)\s*:",
        # Role markers that forge a turn of the conversation: "Assistant:", "SYSTEM: you must ...".
        # Except for "assistant", each is also an everyday label ("System: Windows 11", "Model:
        # iPhone 14", "Operator: Vodafone"), so it needs instruction-like words after it.
        rf"{_TURN_START}(?:\[|<|\()?assistant\s*(?:\]|>|\))?\s*:",
        rf"{_TURN_START}(?:\[|<|\()?(?:system|sys|admin|ai|bot|developer|operator|model|claude"
        r"|chatgpt|gpt|human)\s*(?:\]|>|\))?\s*:.{0,80}\b(?:you|your|ignore|instructions?|route"
        r"|routing|classify|assistant|respond|must|always|never|override|mode|pool|confidence"
        r"|escalate)\b",
        r"\byour (?:new )?(?:role|persona|instructions|only goal) (?:is|are"
        r"|will be) (?!to (?:help|assist))",
        r"\byour new (?:task|job|purpose|goal|objective|mission) (?:is|will be) (?!to (?:help"
        r"|assist))",
        r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo"
        r"|root|admin|debug|dan) mode\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|on|engaged"
        r"|unlocked)\b",
        r"\b(?:enable|activate|enter|switch (?:to|into)|turn on|unlock)\s+(?:the\s+)?(?:god"
        r"|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo|dan) mode",
        r"\b(?:enable|activate|enter|switch (?:to|into))\s+(?:your\s+)?developer mode\s*(?:and|,"
        r"|then|now|so)\s+(?:\w+\s+){0,2}?(?:ignore|answer|respond|tell|reveal|route|classify"
        r"|disable|bypass|do anything)",
        r"\bdeveloper mode\b.{0,60}\b(?:no (?:rules|restrictions|filters|limits)|unrestricted"
        r"|uncensored|ignore (?:all|your|the)|bypass)",
        r"\bjailbreak (?:mode|prompt)\b|\b(?:act as|become|you(?:'re| are)) an? (?:jailbroken"
        r"|unrestricted|unfiltered|uncensored) (?:ai|assistant|model|bot|version)",
        r"\bstands for \"?do anything now|\(do anything now\)",
        r"\byou(?:'re| are) (?:not|no longer) (?:bound|restricted|limited|constrained) by",
        r"\byou have no (?:rules|restrictions|guidelines|limitations|filters|ethical)",
        r"\b(?:respond|answer|reply|act|operate|speak"
        r"|talk)\s+(?:freely\s+)?without (?:any )?(?:restrictions|filters|rules|limitations"
        r"|guidelines|censorship|ethical)",
        r"\bsudo\s+(?:mode|override|ignore|route|set|rm|su)\b",
        r"\b(?:admin|administrator|developer|root|system) (?:override|access"
        r"|privileges?) (?:granted|enabled|activated|code)\b",
        # French, German, Spanish
        r"\b(?:tu es|vous etes) (?:maintenant|desormais|a present|dorenavant)\s+(?:un|une|le|la"
        r"|mon|ma|en mode)\s+(?:[\w-]+\s+){0,2}?(?:assistant|ia|bot|robot|modele|agent"
        r"|administrateur|developpeur|systeme|pirate|dan|sans restrictions?)",
        r"\b(?:a partir de maintenant|desormais|dorenavant),? (?:tu (?:es|dois|vas|ignores"
        r"|reponds)|vous (?:etes|devez|allez|ignorez|repondez))",
        r"\b(?:agis|agissez) (?:comme|en tant que) (?:un|une|si)\b|\bfais comme si tu etais"
        r"|\bjoue le role d",
        r"\b(?:du bist|sie sind) (?:jetzt|ab sofort|nun|ab jetzt)\s+(?:ein|eine|der|die|das|mein"
        r"|im)\s+(?:[\w-]+\s+){0,2}?(?:assistent|ki|bot|modell|agent|administrator|entwickler"
        r"|system|hacker|dan|modus)",
        r"\bab (?:jetzt|sofort) (?:bist du|antwortest du|ignorierst du|gibt es keine)",
        r"\btu so,? als (?:ob|warst)|\bverhalte dich (?:wie|als)\b|\bspiele die rolle",
        r"\b(?:ahora|a partir de ahora|desde ahora)\s*,?\s*(?:eres|seras|actuas|actua|responde"
        r"|responderas|ignora)\b",
        r"\b(?:actua|actue) como (?:un|una|si)\b|\bfinge (?:que eres|ser)\b|\bhaz de cuenta que",
    ),
    "prompt_exfiltration": (
        rf"\b{_EXF_VERB}\s+(?:me\s+|us\s+)?(?:(?:the|your|all|of|exact|full|entire|complete|whole"
        rf"|verbatim|any|back)\s+)*{_EXF_OBJECT}",
        r"\byour (?:system prompt|system instructions|hidden instructions|secret instructions"
        r"|initial instructions|original instructions|internal instructions)",
        r"\bwhat (?:were|have) you (?:been )?(?:told|instructed|programmed|prompted"
        r"|configured)(?!\s+(?:about|by|regarding|re|concerning|when|on|that my|from"
        r"|to do with)\b)",
        r"\bwhat (?:instructions|rules|directives) (?:were|have) you (?:been )?given",
        r"\bhow (?:were|are|have) you (?:been )?(?:programmed|prompted|configured|instructed)",
        r"\b(?:starting|beginning|that starts|that begins) with ['\"]?you are\b",
        r"\b(?:first|last|opening|next) (?:line|sentence|word|paragraph|part)s? of (?:your"
        r" (?:instructions|prompt|rules|system prompt|system message)|the (?:system prompt"
        r"|system message|prompt))",
        r"\b(?:repeat|print|output|copy)\s+(?:everything|all|the text|the words)\s+(?:above"
        r"|before|prior to) (?:this|my)",
        # French, German, Spanish
        r"\b(?:montre|affiche|revele|donne|dis|repete|ecris|copie|montrez|affichez|revelez|donnez"
        r"|dites|repetez)[-\s]*(?:moi|nous)?\s+(?:\w+\s+){0,2}?(?:prompt|message|instructions"
        r"|consignes)\s+(?:systeme|du systeme|initiales?|cachees?|secretes?|d'origine|originales?)",
        r"\b(?:ton|votre) prompt\b",
        r"\b(?:zeig|zeige|gib|nenne|verrate|wiederhole|schreib"
        r"|drucke)\s+(?:mir\s+)?(?:\w+\s+){0,2}?(?:system ?prompt|systemanweisungen"
        r"|systemnachricht|(?:urspr|anfang|geheim|versteckt|intern)\w*\s+(?:anweisungen|prompt"
        r"|instruktionen))",
        r"\b(?:deinen|ihren) (?:system)?prompt\b",
        r"\b(?:muestra|muestrame|revela|revelame|dime|ensename|imprime|repite|escribe"
        r"|dame)\s+(?:\w+\s+){0,2}?(?:prompt|mensaje|instrucciones)\s+(?:del sistema|de sistema"
        r"|iniciales?|ocult[oa]s?|secret[oa]s?|originales?)",
        r"\btu prompt\b",
    ),
    "routing_manipulation": (
        r"\broute\s+(?:this|it|that|the (?:ticket|message|request|case|conversation|chat|query)"
        r"|this (?:ticket|message|request|case|conversation|chat|query))\s+(?:directly\s+"
        r"|immediately\s+|straight\s+)?(?:to|into|as)\b",
        r"\b(?:send|assign|escalate|forward|transfer|move|put|place|route)\s+(?:this|it|me"
        r"|the ticket|this ticket|this message)\s+(?:directly\s+)?(?:to|in"
        r"|into)\s+(?:the\s+)?(?:[\w-]+\s+)?pool\b",
        r"\bset\s+(?:the\s+|your\s+|its\s+)?(?:routing\s+|classification\s+)?(?:confidence"
        r"|probability|certainty|pool|label|classification|routing|tier|action"
        r"|score)\s*(?:score\s+|level\s+|value\s+)?(?:to|=|:|as|at)\s",
        r"\bconfidence\s*(?:score\s*|level\s*)?(?:[:=]|of|to|at|is)\s*(?:1(?:\.0+)?|0?\.\d+"
        r"|100\s*%|\d{2,3}\s*%|high|max(?:imum)?)(?![\w.])",
        r"\bclassify\s+(?:this|it|me|that|the \w+|this \w+)\s+(?:\w+\s+){0,2}?(?:as|under"
        r"|into)\b",
        r"\b(?:label|tag|categori[sz]e)\s+(?:this|it|the ticket|this ticket|this message"
        r"|this request)\s+(?:as|under)\b",
        r"\b(?:pool|tier|action|label)\s*[:=]\s*[\"']?[a-z]",
        r"[\"'](?:pool|confidence|action|missing_fields|tier)[\"']\s*:",
        r"\b(?:route_ticket|tool_use|tool_call|function_call|tool_calls|tool_choice)\b",
        rf"{_IMPERATIVE_START}(?:respond|reply|answer|output|return|print)\s+(?:only\s+)?(?:with"
        r"|in|as|using)\s+(?:(?:the|this|a|following|valid|raw|only)\s+)*json\b",
        r"\b(?:respond|reply|answer|output"
        r"|return)\s+(?:only\s+)?(?:with\s+)?(?:the\s+)?(?:following\s+)?json\s*:",
        r"\b(?:call|invoke|use|trigger|execute|run)\s+(?:the\s+|your\s+)?(?:\w+\s+)?(?:tool"
        r"|function)\s+(?:[\w-]+\s+)?(?:with|using|passing|and set|to route|to set)\b",
        r"\byou (?:must|should|will|have to|need to) (?:route|classify|assign) (?:this|it|me"
        r"|the ticket|this ticket)\s+(?:directly\s+)?(?:to|as|into)\b",
        r"\bthis (?:ticket|message|request|case|conversation) (?:must|should|has to|needs to"
        r"|will) be (?:routed|classified|assigned|categori[sz]ed|labell?ed) (?:to|as|into|under)\b",
        r"\b(?:skip|bypass|override|circumvent|disable)\s+(?:the\s+|your\s+"
        r"|any\s+)?(?:human\s+)?(?:review|routing|router|classifier|classification|triage"
        r"|moderation|filters?)\b",
        # French, German, Spanish
        r"\b(?:classe|classez|classifie|classifiez|achemine|acheminez|route|routez)\s+(?:ce|cette"
        r"|le|la)\s+(?:ticket|message|demande|requete|conversation)\s+(?:\w+\s+){0,2}?(?:comme"
        r"|vers|dans|en tant que)\b",
        r"\b(?:mets|mettez|fixe|fixez|regle|reglez)\s+(?:la\s+|le\s+)?(?:confiance"
        r"|niveau de confiance|score|pool)\s+(?:a|sur|au)\b",
        r"\b(?:klassifiziere|klassifizieren sie|kategorisiere|route|stufe)\s+(?:dieses|diesen"
        r"|diese|das|den|die)\s+(?:ticket|anfrage|nachricht|fall)\s+(?:\w+\s+){0,2}?(?:als"
        r"|ein)\b",
        r"\bsetze\s+(?:die\s+|den\s+)?(?:konfidenz|zuversicht|confidence|pool|score)\s+auf\b",
        r"\b(?:clasifica|clasifique|clasificad|enruta|enrute|categoriza|etiqueta)\s+(?:este|esta"
        r"|el|la)\s+(?:ticket|mensaje|solicitud|caso|consulta)\s+(?:\w+\s+){0,2}?(?:como|a|al"
        r"|en)\b",
        r"\b(?:pon|ponga|establece|fija|ajusta)\s+(?:la\s+|el\s+)?(?:confianza|nivel de confianza"
        r"|pool|puntuacion)\s+(?:en|a|al)\b",
    ),
    "delimiter_injection": (
        r"</\s*(?:customer_message|customer|message|user|user_input|input|ticket|text|query"
        r"|context|document|data|instructions?|prompt|system|human|assistant|conversation|chat"
        r"|request|content|untrusted\w*)\s*>",
        r"<\s*(?:system|assistant|developer|admin|instructions?|prompt|system_prompt|sys|im_start"
        r"|im_end|tool_use|tool_result|function_calls?|invoke|antml:\w+|human|ai"
        r"|user)\s*(?:\s[^<>]{0,60})?>",
        r"<\|[a-z_]+\|>|\[/?inst\]|<<\s*/?sys\s*>>|\[/?(?:system|assistant"
        r"|developer)(?:_message)?\]",
        r"(?m)^\s*#{1,6}\s*(?:system|assistant|developer|instructions?|new instructions"
        r"|system prompt|response)\s*:?\s*$",
        r"```[\w-]*\s*(?:system|assistant|developer|admin|user|human|instructions?"
        r"|new instructions)\s*[:\]>]",
        r"\b(?:end|close|closing|stop)\s+(?:of\s+)?(?:the\s+)?(?:customer|user"
        r"|untrusted)?\s*(?:message|input|prompt|ticket|text|data|query)\b\s*(?:[-=#*_\]>]{2,}"
        r"|[.:]?\s*(?:begin|start|new|system|assistant|now (?:follow|you)))",
        r"(?<![-=#*_])[-=#*_]{3,}\s*(?:begin\s+|start\s+)?(?:system|admin|developer|assistant"
        r"|instructions?|new instructions|system prompt)\b(?!\s+(?:log|logs|info|information"
        r"|details|requirements|specs|error|settings|version))",
    ),
    "encoding_tricks": (
        r"\b(?:translate|decode|decipher|decrypt|convert|interpret|unscramble|reverse"
        r"|read)\s+(?:the\s+following|this|the\s+text|it|the\s+message"
        r"|the\s+string)\b.{0,60}?(?:\band\b|\bthen\b|,)\s*(?:then\s+)?(?:execute|follow|obey"
        r"|run|do|perform|apply|carry out|act on|comply)",
        r"\bexecute\s+(?:the\s+)?(?:decoded|translated|following|hidden|encoded|reversed)\b",
        r"\b(?:base64|base-64|rot13|rot-13|hex|binary|morse|caesar|leetspeak"
        r"|reversed?)\b.{0,60}\b(?:execute|obey|follow (?:it|them|the (?:decoded|hidden"
        r"|encoded) (?:text|instructions?)|the instructions? (?:inside|within|in it))"
        r"|do what it says)",
        r"\b(?:traduis|traduisez|decode|decodez)\b.{0,40}\bexecute",
        r"\b(?:ubersetze|dekodiere|entschlussele)\b.{0,40}\b(?:fuhre|befolge)",
        r"\b(?:traduce|decodifica|descifra)\b.{0,40}\b(?:ejecuta|obedece|sigue)",
    ),
}

_COMPILED: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (name, tuple(re.compile(p) for p in patterns)) for name, patterns in _PATTERNS.items()
)
# "DAN" ("do anything now") only in capitals and in a role context: Dan is also a name.
_DAN = re.compile(
    r"\b(?i:you are|you're|as|be|become|called|named|enable|activate) DAN\b"
    r"|\bDAN (?i:mode|prompt|jailbreak)\b"
)
_BASE64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{24,}={0,2}(?![\w+/=-])")
_HEX = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])|(?:\\x[0-9a-fA-F]{2}){8,}"
)
_PERCENT = re.compile(r"(?:%[0-9a-fA-F]{2}){8,}")


def injection_detect(text: str) -> list[SignalName]:
    """Names of the prompt-injection patterns found in the text, in SIGNAL_NAMES order."""
    found = _signals(text)
    hidden = hidden_payloads(text) + _decoded_blobs(text)
    if hidden:
        found.add("encoding_tricks")
    for payload in hidden:
        found |= _signals(payload)
    backwards = _signals(_views(text)[1][0][::-1]) - {"encoding_tricks"}
    if backwards:
        found |= backwards | {"encoding_tricks"}
    return [name for name in SIGNAL_NAMES if name in found]


def _signals(text: str) -> set[str]:
    lines, flats = _views(text)
    found = {
        name
        for name, patterns in _COMPILED
        if any(
            p.search(view)
            for p in patterns
            for view in ((lines,) if name == "delimiter_injection" else (lines, *flats))
        )
    }
    if _DAN.search(unicodedata.normalize("NFKC", strip_invisible(text))):
        found.add("role_override")
    return found


def _natural_language(decoded: str) -> bool:
    """Whether decoded bytes read as words rather than binary, keys or JSON."""
    if len(decoded) < 12 or not decoded.isprintable():
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in decoded)
    return decoded.count(" ") >= 3 and letters >= 0.8 * len(decoded)


def _decoded_blobs(text: str) -> list[str]:
    """Natural-language text hidden in base64, hex or percent-encoding."""
    found: list[str] = []
    candidates: list[bytes] = []
    for blob in _BASE64.findall(text):
        if len(blob.rstrip("=")) % 4 == 1:
            continue
        padded = blob.rstrip("=") + "=" * (-len(blob.rstrip("=")) % 4)
        try:
            candidates.append(
                base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            )
        except (binascii.Error, ValueError):
            continue
    for blob in _HEX.findall(text):
        candidates.append(bytes.fromhex(blob.replace("\\x", "")))
    for blob in _PERCENT.findall(text):
        candidates.append(unquote(blob).encode("utf-8", errors="replace"))
    for data in candidates:
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _natural_language(decoded):
            found.append(decoded)
    return found
