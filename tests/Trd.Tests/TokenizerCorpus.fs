/// A fixed-seed corpus for comparing tokenizers: strings by category (scripts, emoji, code, numbers, white space,
/// line breaks, letters and digits outside the BMP, added tokens inside text, NFD input, …). It never holds
/// U+0085 or U+FEFF, on which JavaScript's \s and Hugging Face's disagree (TokenizerTests checks those apart).
module Trd.Tests.TokenizerCorpus

open System
open System.Globalization
open System.Text

/// One kind of string and how to make one.
type Category = { Name: string; Make: Random -> string }

let private cp (c: int) = Char.ConvertFromUtf32 c
let private pick (rng: Random) (xs: 'a[]) = xs[rng.Next xs.Length]
let private between (rng: Random) lo hi = rng.Next(lo, hi + 1)

let private isLetterOrNumber (c: UnicodeCategory) =
    match c with
    | UnicodeCategory.UppercaseLetter | UnicodeCategory.LowercaseLetter | UnicodeCategory.TitlecaseLetter
    | UnicodeCategory.ModifierLetter | UnicodeCategory.OtherLetter | UnicodeCategory.DecimalDigitNumber
    | UnicodeCategory.LetterNumber | UnicodeCategory.OtherNumber -> true
    | _ -> false

/// A code point in [lo, hi] whose category passes `keep` (so reserved holes are skipped).
let private codePoint (rng: Random) lo hi (keep: UnicodeCategory -> bool) =
    let rec go tries =
        let c = between rng lo hi
        if keep (CharUnicodeInfo.GetUnicodeCategory c) then cp c
        elif tries > 1000 then failwith $"no code point in U+{lo:X4}..U+{hi:X4} passes the filter"
        else go (tries + 1)
    go 0

/// `count` pieces made by `piece`, joined by `sep`.
let private many (rng: Random) lo hi (sep: Random -> string) (piece: Random -> string) =
    let n = between rng lo hi
    let b = StringBuilder()
    for i in 0 .. n - 1 do
        if i > 0 then b.Append(sep rng) |> ignore
        b.Append(piece rng) |> ignore
    b.ToString()

let private word (rng: Random) lo hi (letter: Random -> string) = many rng lo hi (fun _ -> "") letter

let private commonHanzi =
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷"
    |> Seq.map string |> Seq.toArray

let private hanzi (rng: Random) =
    if rng.NextDouble() < 0.7 then pick rng commonHanzi else codePoint rng 0x4E00 0x9FA5 isLetterOrNumber

let private chinese (rng: Random) =
    let punct = [| "，"; "。"; "！"; "？"; "、"; "；"; "："; "“"; "”"; "（"; "）"; "《"; "》"; "……"; "——" |]
    many rng 1 6 (fun r -> pick r punct) (fun r ->
        match r.Next 10 with
        | 0 -> " " + pick r [| "AI"; "Python"; "GPU"; "2024年"; "3.14"; "OK" |] + " "
        | _ -> word r 1 8 hanzi)

let private japanese (rng: Random) =
    let hiragana r = codePoint r 0x3041 0x3093 isLetterOrNumber
    let katakana r = codePoint r 0x30A1 0x30F3 isLetterOrNumber
    let punct = [| "。"; "、"; "「"; "」"; "ー"; "・"; "！"; "？"; "『"; "』" |]
    many rng 1 6 (fun r -> pick r punct) (fun r ->
        match r.Next 3 with
        | 0 -> word r 1 6 hiragana
        | 1 -> word r 2 6 katakana + (if r.Next 2 = 0 then "ー" else "")
        | _ -> word r 1 3 hanzi + word r 1 3 hiragana)

let private korean (rng: Random) =
    let syllable r = codePoint r 0xAC00 0xD7A3 isLetterOrNumber
    many rng 1 10 (fun r -> pick r [| " "; " "; " "; ", "; ". "; "? "; "! " |]) (fun r -> word r 1 5 syllable)

let private cyrillic (rng: Random) =
    let lower (r: Random) = if r.Next 40 = 0 then "ё" else codePoint r 0x0430 0x044F isLetterOrNumber
    let w (r: Random) =
        let body = word r 1 10 lower
        if r.Next 4 = 0 then body.Substring(0, 1).ToUpperInvariant() + body.Substring 1 else body
    many rng 1 10 (fun r -> pick r [| " "; " "; " "; ", "; ". "; " — "; "! "; " «"; "» " |]) w

let private arabic (rng: Random) =
    let letter r = codePoint r 0x0621 0x064A isLetterOrNumber
    let w (r: Random) =
        many r 1 7 (fun _ -> "") (fun r -> letter r + (if r.Next 3 = 0 then cp (between r 0x064B 0x0652) else ""))
    let digits (r: Random) = word r 1 4 (fun r -> cp (between r 0x0660 0x0669))
    many rng 1 8 (fun r -> pick r [| " "; " "; "، "; "؟ "; ". "; " - " |]) (fun r -> if r.Next 6 = 0 then digits r else w r)

let private emoji (rng: Random) =
    let face r = codePoint r 0x1F600 0x1F64F (fun _ -> true)
    let symbol r = codePoint r 0x1F300 0x1F5FF (fun c -> c = UnicodeCategory.OtherSymbol)
    let tone r = cp (between r 0x1F3FB 0x1F3FF)
    let flag r = cp (between r 0x1F1E6 0x1F1FF) + cp (between r 0x1F1E6 0x1F1FF)
    let zwj = "\u200D"
    let family = [| 0x1F468; 0x1F469; 0x1F467; 0x1F466 |]
    let sequences =
        [| "👨‍👩‍👧‍👦"; "🏳️‍🌈"; "👩‍💻"; "🧑‍🚀"; "❤️"; "❤️‍🔥"; "👁️‍🗨️"; "🏴‍☠️"; "1️⃣"; "#️⃣"; "✌🏽"; "👍🏿"; "🤷‍♀️" |]
    let one (r: Random) =
        match r.Next 7 with
        | 0 -> face r
        | 1 -> symbol r
        | 2 -> face r + tone r
        | 3 -> flag r
        | 4 -> String.Join(zwj, Array.init (between r 2 4) (fun _ -> cp (pick r family)))
        | 5 -> pick r sequences
        | _ -> pick r [| "ok"; "haha"; "yes!"; "好的"; "спасибо"; "nice one" |]
    many rng 1 6 (fun r -> pick r [| ""; " "; " "; "\n"; "!" |]) one

let private identifier (rng: Random) =
    pick rng [| "x"; "i"; "count"; "totalSum"; "my_var"; "HTTPServer"; "_private"; "value2"; "φ"; "données" |]

let private code (rng: Random) =
    let line (r: Random) =
        let id = identifier r
        let n = r.Next 1000
        match r.Next 12 with
        | 0 -> $"for (int {id} = 0; {id} < {n}; {id}++) {{"
        | 1 -> $"def {id}(self, x: int = {n}) -> str:"
        | 2 -> $"    return {id} * {n} + 1;"
        | 3 -> $"const {id} = await fetch(`/api/v1/items/${{id}}`);"
        | 4 -> $"if ({id} != null && {id}.Length >= {n}) {{ throw new ArgumentException(\"bad\"); }}"
        | 5 -> $"# it's {id}'s job: don't touch {n}"
        | 6 -> $"// TODO({id}): fix -> {n}%% <= 0x{n:X}"
        | 7 -> $"let {id} = [| {n}; {n + 1}; {n * 2} |] |> Array.map (fun v -> v * v)"
        | 8 -> "}"
        | 9 -> $"\t{id} := map[string]int{{\"a\": {n}}}"
        | 10 -> $"SELECT {id}, COUNT(*) FROM t WHERE {id} > {n} GROUP BY {id};"
        | _ -> $"print(f\"{{{id}!r:>10}}\")  # {n}"
    many rng 1 6 (fun r -> pick r [| "\n"; "\n"; "\n    "; "\n\t"; "\n\n"; "\r\n" |]) line

let private numbers (rng: Random) =
    let one (r: Random) =
        match r.Next 12 with
        | 0 -> string (r.Next())
        | 1 -> (r.NextDouble() * 1000.0).ToString("F3", CultureInfo.InvariantCulture)
        | 2 -> (r.Next 10000000).ToString("N0", CultureInfo.InvariantCulture)
        | 3 -> "-" + string (r.Next 100000)
        | 4 -> (r.NextDouble() * 1e-5).ToString("E4", CultureInfo.InvariantCulture)
        | 5 -> String(Array.init (between r 5 30) (fun _ -> char (int '0' + r.Next 10)))
        | 6 -> $"v{r.Next 10}.{r.Next 20}.{r.Next 100}"
        | 7 -> $"abc{r.Next 1000}def{r.Next 100}"
        | 8 -> word r 1 5 (fun r -> cp (between r 0xFF10 0xFF19))
        | 9 -> pick r [| "²"; "³"; "½"; "¾"; "Ⅻ"; "ⅷ"; "①"; "⑳"; "٣"; "१२३"; "๒๕๖๗" |]
        | 10 -> String.Join(":", [ for m in [ 24; 60; 60 ] -> (r.Next m).ToString "D2" ])
        | _ ->
            let area, exchange, line = r.Next 1000, r.Next 1000, r.Next 10000
            $"+1 ({area:D3}) {exchange:D3}-{line:D4}"
    many rng 1 6 (fun r -> pick r [| " "; ", "; " + "; "="; "\n"; " x " |]) one

let private spaces =
    [| " "; "  "; "   "; "    "; "\t"; "\t\t"; "\n"; "\n\n"; "\r\n"; "\r"; "\u00A0"; "\u3000"; "\u2003"; "\u2009"; "\u2028"
       "\u2029"; "\u000B"; "\u000C"; "\u202F"; "\u205F"; "\u1680"; " \n "; "\t \n"; "  \r\n  " |]

let private whitespaceRuns (rng: Random) =
    let run (r: Random) = many r 1 4 (fun _ -> "") (fun r -> pick r spaces)
    match rng.Next 4 with
    | 0 -> run rng
    | _ -> many rng 1 6 run (fun r -> pick r [| "a"; "word"; "x1"; "—"; "."; "中文"; "Ω"; "'s"; "!!" |])

let private tabsAndCrlf (rng: Random) =
    let line (r: Random) =
        String('\t', r.Next 3) + String(' ', r.Next 3)
        + pick r [| "key\tvalue"; "a\t\tb"; "Line one."; "x = 1;"; "\t"; ""; "end  "; "col1\tcol2\tcol3"; "   trailing   " |]
    many rng 1 6 (fun r -> pick r [| "\r\n"; "\r\n"; "\r\n\r\n"; "\n"; "\r"; " \r\n"; "\t\r\n" |]) line

let private outsideBmp (rng: Random) =
    let one (r: Random) =
        match r.Next 9 with
        | 0 -> word r 1 6 (fun r -> codePoint r 0x1D400 0x1D6A5 isLetterOrNumber) // mathematical letters
        | 1 -> word r 1 4 (fun r -> codePoint r 0x1D7CE 0x1D7FF isLetterOrNumber) // mathematical digits
        | 2 -> word r 1 5 (fun r -> codePoint r 0x20000 0x2A6D6 isLetterOrNumber) // CJK Extension B
        | 3 -> word r 1 6 (fun r -> codePoint r 0x10330 0x1034A isLetterOrNumber) // Gothic (𐍁 is a letter number)
        | 4 -> word r 1 6 (fun r -> codePoint r 0x10400 0x1044F isLetterOrNumber) // Deseret
        | 5 -> word r 1 3 (fun r -> codePoint r 0x104A0 0x104A9 isLetterOrNumber) // Osmanya digits
        | 6 -> word r 1 3 (fun r -> codePoint r 0x1D360 0x1D371 isLetterOrNumber) // counting rod numerals
        | 7 -> word r 1 5 (fun r -> codePoint r 0x10300 0x1031E isLetterOrNumber) // Old Italic
        | _ -> pick r [| "a"; "Z9"; "x"; "42"; "'s"; "ü"; "中" |]
    many rng 1 6 (fun r -> pick r [| ""; ""; " "; "-"; "'"; ", "; "\n" |]) one

/// Qwen3's 26 added tokens.
let addedTokens =
    [| "<|endoftext|>"; "<|im_start|>"; "<|im_end|>"; "<|object_ref_start|>"; "<|object_ref_end|>"; "<|box_start|>"
       "<|box_end|>"; "<|quad_start|>"; "<|quad_end|>"; "<|vision_start|>"; "<|vision_end|>"; "<|vision_pad|>"
       "<|image_pad|>"; "<|video_pad|>"; "<tool_call>"; "</tool_call>"; "<|fim_prefix|>"; "<|fim_middle|>"
       "<|fim_suffix|>"; "<|fim_pad|>"; "<|repo_name|>"; "<|file_sep|>"; "<tool_response>"; "</tool_response>"
       "<think>"; "</think>" |]

let private nearMisses =
    [| "<|im_end"; "|im_end|>"; "<think"; "</think"; "<|IM_END|>"; "< think>"; "<|im_start |>"; "<<"; "|>"; "<|"; "<tool_call"
       "<\u0338"; ">\u0338" |]

let private latinWords =
    [| "The"; "quick"; "brown"; "fox"; "jumps"; "over"; "the"; "lazy"; "dog"; "Hello"; "world"; "tokenizer"; "naïve"
       "café"; "résumé"; "Straße"; "don't"; "I'm"; "we'll"; "they're"; "it's"; "you've"; "he'd"; "OK"; "USA"; "e.g." |]

let private english (rng: Random) =
    let w (r: Random) =
        match r.Next 10 with
        | 0 -> pick r latinWords + pick r [| "'s"; "'S"; "'t"; "'T"; "'re"; "'RE"; "'Re"; "'ve"; "'VE"; "'m"; "'M"; "'ll"; "'LL"; "'d"; "'D"; "'x"; "’s" |]
        | 1 -> "\"" + pick r latinWords + "\""
        | 2 -> "'" + pick r latinWords + "'"
        | _ -> pick r latinWords
    many rng 1 12 (fun r -> pick r [| " "; " "; " "; ", "; ". "; "! "; "? "; "; "; " - "; "\n" |]) w

let private withAddedTokens (rng: Random) =
    let text (r: Random) =
        match r.Next 5 with
        | 0 -> english r
        | 1 -> chinese r
        | 2 -> pick r [| "\n"; " "; ""; "\n\n"; "abc"; "user"; "assistant" |]
        | 3 -> pick r nearMisses
        | _ -> emoji r
    many rng 1 8 (fun _ -> "") (fun r -> if r.Next 2 = 0 then pick r addedTokens else text r)

let private accentedLatin =
    [| "café"; "naïve"; "résumé"; "Việt Nam"; "Tiếng Việt"; "Ångström"; "São Paulo"; "façade"; "jalapeño"; "Zürich"
       "Ελληνικά"; "ἀρχή"; "Dvořák"; "Łódź"; "crème brûlée"; "piñata"; "ḍ̣"; "한국어"; "가나다"; "Å"; "ǅ"; "ﬁ"; "Ω"; "K"; "Å" |]

let private nfd (rng: Random) =
    let piece (r: Random) =
        match r.Next 4 with
        | 0 -> pick r [| "e\u0301"; "a\u0308"; "o\u0302\u0301"; "n\u0303"; "u\u031B\u0323"; "A\u030A"; "\u1100\u1161"; "\u1112\u1161\u11AB" |]
        | _ -> pick r accentedLatin
    let text = many rng 1 6 (fun r -> pick r [| " "; ", "; "\n"; "" |]) piece
    text.Normalize NormalizationForm.FormD

let private punctuation (rng: Random) =
    let run (r: Random) =
        word r 1 6 (fun r ->
            pick r [| "!"; "?"; "."; ","; ";"; ":"; "-"; "—"; "–"; "…"; "("; ")"; "["; "]"; "{"; "}"; "*"; "&"; "%"; "$"; "#"; "@"
                      "~"; "^"; "|"; "\\"; "/"; "'"; "\""; "`"; "©"; "®"; "™"; "€"; "£"; "¥"; "§"; "¶"; "•"; "→"; "≤"; "∑"
                      "√"; "∞"; "─"; "│"; "┼"; "░"; "♥"; "★"; "¿"; "¡"; "«"; "»"; "‹"; "›"; "\u0301" |])
    many rng 1 6 (fun r -> pick r [| " "; ""; "\n"; "\r\n"; "\n\n"; " \n"; "a"; "1" |]) run

let private marks (rng: Random) =
    let texts =
        [| "नमस्ते दुनिया"; "हिन्दी भाषा"; "สวัสดีครับ"; "ภาษาไทย"; "שָׁלוֹם"; "עברית"; "Привет"; "Ελληνική γλώσσα"; "Բարեւ"
           "გამარჯობა"; "বাংলা"; "தமிழ்"; "ಕನ್ನಡ"; "ትግርኛ"; "ᐃᓄᒃᑎᑐᑦ"; "Tiếng Việt"; "ꦧꦱꦗꦮ" |]
    many rng 1 5 (fun r -> pick r [| " "; ", "; "\n"; "। "; "" |]) (fun r -> pick r texts)

let private categoriesWithoutMixed =
    [ { Name = "Chinese"; Make = chinese }
      { Name = "Japanese"; Make = japanese }
      { Name = "Korean"; Make = korean }
      { Name = "Cyrillic"; Make = cyrillic }
      { Name = "Arabic"; Make = arabic }
      { Name = "emoji and ZWJ sequences"; Make = emoji }
      { Name = "code"; Make = code }
      { Name = "numbers"; Make = numbers }
      { Name = "white-space runs"; Make = whitespaceRuns }
      { Name = "tabs and CRLF"; Make = tabsAndCrlf }
      { Name = "letters and digits outside the BMP"; Make = outsideBmp }
      { Name = "added tokens inside text"; Make = withAddedTokens }
      { Name = "NFD input"; Make = nfd }
      { Name = "English with contractions"; Make = english }
      { Name = "punctuation and symbols"; Make = punctuation }
      { Name = "scripts with combining marks"; Make = marks } ]

let private mixed (rng: Random) =
    many rng 2 5 (fun r -> pick r [| ""; " "; "\n" |]) (fun r -> (pick r (List.toArray categoriesWithoutMixed)).Make r)

/// Every category, the mixed one last.
let categories = categoriesWithoutMixed @ [ { Name = "mixed"; Make = mixed } ]

/// Hand-picked boundary cases.
let edgeCases =
    [| ""; " "; "  "; "\n"; "\r\n"; "\t"; "'"; "''"; "'s"; "'S"; "'ll"; "'LL"; "'lL"; "a'sb"; " 's"; "x's"; "'re'"; "1"
       "12345"; " 1"; "a1"; "1a"; "𝟏"; "𝐀"; "a𝐀"; "𝐀1"; "𠀀"; " 𠀀"; "\n\n\n"; "a\n"; "a \n"; "a  \n b"; "a  b"; "a   "
       "   a"; " !"; "!!\n\n"; "! \n"; "\t\tx"; "\r"; "\r\r\n"; "...\r\n\r\n"; "<|im_end|>"; "<|im_end|><|im_end|>"
       "<|im_start|>system\nYou are helpful.<|im_end|>\n"; "a<think>b</think>c"; "<<|im_end|>>"; "<|endoftext|"
       "e\u0301"; "\u0301"; " \u0301"; "<|im_end|>\u0338"; "\u212B"; "\u2126"; "\u212A"; "ﬁ"; "😀"; " 😀abc"; "😀 abc" |]

/// The corpus: the edge cases, then `perCategory` strings of each category, each category from its own fixed seed
/// (so adding a category leaves the others unchanged). Returns (category, text) pairs.
let generate (seed: int) (perCategory: int) =
    [| for e in edgeCases -> "edge cases", e
       for i, category in List.indexed categories do
           let rng = Random(seed + 7919 * i)
           for _ in 1 .. perCategory -> category.Name, category.Make rng |]
