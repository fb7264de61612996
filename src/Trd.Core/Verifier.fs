namespace Trd.Core

open System
open System.Numerics
open System.Text

/// The rule-based boxed-answer verifier for math, Verify(y, y*) of Eq. 4 and App. C.2 ("answer extraction
/// from the final boxed… block"). Three steps, each usable alone:
///
/// 1. `lastBoxed` extracts the content of the last `\boxed{…}` / `\fbox{…}` of a response.
/// 2. `normalise` rewrites the usual LaTeX forms into one canonical string.
/// 3. `equivalent` compares two answers: equal canonical strings; else numbers (exact rationals, with a
///    relative tolerance of 1e-6 when either side is written as a decimal); else tuples, intervals and sets
///    element by element.
///
/// No symbolic algebra: `0.1+0.2` is not evaluated (it does not equal `0.3`), `\sqrt{8}` does not equal
/// `2\sqrt{2}`, `\pi` is not a number. Work is linear in the input, times at most the depth cap, under
/// explicit caps (nesting depth 64, 1,000 digits and exponents of magnitude 1,000 per number, a comparison
/// budget), so a megabyte of adversarial text returns promptly; none throws on a non-null string.
module Verifier =

    // -----------------------------------------------------------------------------------------------------
    // Caps that keep every input bounded in time
    // -----------------------------------------------------------------------------------------------------

    /// Deepest nesting of brackets, fractions or groups that `equivalent` looks into; deeper answers that are
    /// not equal as strings are not equivalent.
    [<Literal>]
    let MaxDepth = 64

    /// Most digits in one number literal; longer literals are compared as strings only.
    [<Literal>]
    let MaxDigits = 1000

    /// Largest |exponent| of `1e5` / `\times10^{5}` forms; larger ones are compared as strings only.
    [<Literal>]
    let MaxExponent = 1000

    /// Relative tolerance for numbers when either side is written as a decimal (`0.3333333` vs `\frac{1}{3}`):
    /// |a − b| ≤ 1e-6 · max(|a|, |b|). Integers and fractions compare exactly.
    [<Literal>]
    let RelativeTolerance = 1e-6

    /// Comparison work (in characters and nodes) one `equivalent` call may spend on structured answers before
    /// it answers false; only sets of thousands of elements that pair only within the tolerance, or large sets
    /// of sets, get near it.
    [<Literal>]
    let private Budget = 2_000_000

    let private startsAt (s: string) (i: int) (word: string) =
        i >= 0 && i + word.Length <= s.Length && String.CompareOrdinal(s, i, word, 0, word.Length) = 0

    let private isAsciiLetter (c: char) = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
    let private isDigit (c: char) = c >= '0' && c <= '9'

    let private checkNotNull (name: string) (s: string) =
        if obj.ReferenceEquals(s, null) then raise (ArgumentNullException name)

    // -----------------------------------------------------------------------------------------------------
    // Extraction
    // -----------------------------------------------------------------------------------------------------

    /// The content of the last `\boxed{…}` or `\fbox{…}` in `text` (nested braces matched; `\{`, `\}` and
    /// `\\` are escapes, not braces), or null when there is none. `\boxed 5` without braces gives the text up
    /// to the next `$` or line end. When the last `\boxed` is never closed (a truncated generation) the result
    /// is null, as in the common graders (`last_boxed_only_string`): an earlier complete box is not used,
    /// since the model's final answer is the unfinished one. `\boxed{}` gives the empty string, which no
    /// answer is equivalent to. One backward and one forward scan: linear time.
    [<CompiledName("LastBoxed")>]
    let lastBoxed (text: string) : string | null =
        checkNotNull "text" text
        // The last "\boxed" / "\fbox" used as a command: followed by '{', white space or the end.
        let mutable found = -1
        let mutable nameEnd = 0
        let mutable i = text.Length - 1
        while found < 0 && i >= 0 do
            if text[i] = '\\' then
                let len = if startsAt text (i + 1) "boxed" then 5 elif startsAt text (i + 1) "fbox" then 4 else 0
                if len > 0 then
                    let j = i + 1 + len
                    if j >= text.Length || text[j] = '{' || Char.IsWhiteSpace text[j] then
                        found <- i
                        nameEnd <- j
            i <- i - 1
        if found < 0 then null
        else
            let mutable j = nameEnd
            while j < text.Length && Char.IsWhiteSpace text[j] do
                j <- j + 1
            if j >= text.Length then null
            elif text[j] = '{' then
                let start = j + 1
                let mutable depth = 1
                let mutable k = start
                while depth > 0 && k < text.Length do
                    match text[k] with
                    | '\\' -> k <- k + 2
                    | '{' ->
                        depth <- depth + 1
                        k <- k + 1
                    | '}' ->
                        depth <- depth - 1
                        k <- k + 1
                    | _ -> k <- k + 1
                if depth = 0 then text.Substring(start, k - 1 - start) else null
            else
                let mutable k = j
                while k < text.Length && text[k] <> '$' && text[k] <> '\n' do
                    k <- k + 1
                let s = text.Substring(j, k - j).Trim()
                if s.Length = 0 then null else s

    // -----------------------------------------------------------------------------------------------------
    // Normalisation: a fixed sequence of linear passes
    // -----------------------------------------------------------------------------------------------------

    /// For every '{' its matching '}' and for every '}' its '{' (−1 when unmatched); a backslash escapes the
    /// next character. One pass with an explicit stack.
    let private matchBraces (s: string) =
        let partner = Array.create s.Length -1
        let stack = Collections.Generic.Stack<int>()
        let mutable i = 0
        while i < s.Length do
            match s[i] with
            | '\\' -> i <- i + 2
            | '{' ->
                stack.Push i
                i <- i + 1
            | '}' ->
                if stack.Count > 0 then
                    let o = stack.Pop()
                    partner[o] <- i
                    partner[i] <- o
                i <- i + 1
            | _ -> i <- i + 1
        partner

    /// Unicode forms models emit in place of LaTeX.
    let private mapUnicode (s: string) =
        let sb = StringBuilder(s.Length)
        for c in s do
            match c with
            | '\u2212' | '\uFE63' | '\uFF0D' -> sb.Append '-' |> ignore // minus signs
            | '\u221E' -> sb.Append @"\infty " |> ignore
            | '\u03C0' -> sb.Append @"\pi " |> ignore
            | '\u00D7' -> sb.Append @"\times " |> ignore
            | '\u00B7' | '\u22C5' -> sb.Append @"\cdot " |> ignore
            | '\u222A' -> sb.Append @"\cup " |> ignore
            | '\u221A' -> sb.Append @"\sqrt " |> ignore
            | '\u00B0' -> () // degree sign
            | '\u00A0' -> sb.Append ' ' |> ignore
            | c -> sb.Append c |> ignore
        sb.ToString()

    /// Degrees, percent and dollar signs carry no value: `90^\circ` ≡ `90`, `50\%` ≡ `50` (not 0.5), `\$5` ≡ `5`.
    let private dropSigns (s: string) =
        s.Replace(@"{}^{\circ}", "").Replace(@"{}^\circ", "").Replace(@"^{\circ}", "").Replace(@"^\circ", "")
         .Replace(@"\degree", "").Replace(@"\%", "").Replace("%", "").Replace(@"\$", "").Replace("$", "")

    let private textCommands = [| "text"; "textbf"; "textit"; "textrm"; "textnormal"; "mbox"; "mathrm"; "mathbf"; "mathit"; "operatorname" |]

    /// The text command ending just before index `brace` (a '{', possibly after spaces), as its start index, or −1.
    let private textCommandBefore (s: string) (brace: int) =
        let mutable j = brace - 1
        while j >= 0 && s[j] = ' ' do
            j <- j - 1
        let mutable k = j
        while k >= 0 && isAsciiLetter s[k] do
            k <- k - 1
        if k >= 0 && k < j && s[k] = '\\' && Array.contains (s.Substring(k + 1, j - k)) textCommands then k else -1

    /// `\text{…}`-like groups: trailing ones after other content are units and dropped (`5\text{ cm}^2` ≡ `5`);
    /// every other one is unwrapped to its content (`\text{(A)}` ≡ `(A)`).
    let private stripText (s: string) =
        let partner = matchBraces s
        let mutable firstContent = 0
        while firstContent < s.Length && Char.IsWhiteSpace s[firstContent] do
            firstContent <- firstContent + 1
        // Trailing units, right to left: each step removes one group (or white space, `^2`, a period).
        let mutable stop = s.Length
        let mutable go = true
        while go do
            let mutable e = stop
            while e > 0 && (Char.IsWhiteSpace s[e - 1] || s[e - 1] = '.') do
                e <- e - 1
            // an exponent on a unit: ^2, ^3, ^{2}, ^{3}
            if e >= 2 && s[e - 2] = '^' && (s[e - 1] = '2' || s[e - 1] = '3') && e >= 3 && s[e - 3] = '}' then e <- e - 2
            elif e >= 4 && s[e - 1] = '}' && s[e - 4] = '^' && s[e - 3] = '{' && (s[e - 2] = '2' || s[e - 2] = '3') && e >= 5 && s[e - 5] = '}' then e <- e - 4
            if e > 0 && s[e - 1] = '}' && partner[e - 1] >= 0 then
                let cmd = textCommandBefore s partner[e - 1]
                if cmd > firstContent then stop <- cmd
                else go <- false
            else go <- false
        // Unwrap the rest, left to right.
        let sb = StringBuilder(stop)
        let skip = Collections.Generic.HashSet<int>()
        let mutable i = 0
        while i < stop do
            let c = s[i]
            if c = '\\' && i + 1 < stop && isAsciiLetter s[i + 1] then
                let mutable j = i + 1
                while j < stop && isAsciiLetter s[j] do
                    j <- j + 1
                let word = s.Substring(i + 1, j - i - 1)
                let mutable b = j
                while b < stop && s[b] = ' ' do
                    b <- b + 1
                if Array.contains word textCommands && b < stop && s[b] = '{' && partner[b] > b && partner[b] < stop then
                    skip.Add partner[b] |> ignore
                    i <- b + 1
                else
                    sb.Append(s, i, j - i) |> ignore
                    i <- j
            elif c = '\\' && i + 1 < stop then
                sb.Append(s, i, 2) |> ignore
                i <- i + 2
            elif skip.Contains i then i <- i + 1
            else
                sb.Append c |> ignore
                i <- i + 1
        sb.ToString()

    let private sizingCommands =
        set [ "left"; "right"; "big"; "Big"; "bigg"; "Bigg"; "bigl"; "bigr"; "Bigl"; "Bigr"; "biggl"; "biggr"; "Biggl"; "Biggr" ]

    let private spacingCommands = set [ "displaystyle"; "textstyle"; "quad"; "qquad"; "limits"; "nolimits"; "medspace"; "thinspace" ]

    /// Command rewrites and white space in one token scan: `\left`/`\right` (and `\left.`) go, `\dfrac` and
    /// `\tfrac` become `\frac`, `\{ \}` become braces, spacing commands (`\! \, \; \: \quad`…) and white space
    /// go, except one space between a command word and a letter (`\pi r` stays two tokens).
    let private rewriteCommands (s: string) =
        let sb = StringBuilder(s.Length)
        let mutable i = 0
        let mutable lastWasWord = false
        let mutable pendingSpace = false
        let emit (text: string) (isWord: bool) =
            if pendingSpace && lastWasWord && text.Length > 0 && isAsciiLetter text[0] then sb.Append ' ' |> ignore
            sb.Append text |> ignore
            pendingSpace <- false
            lastWasWord <- isWord
        while i < s.Length do
            let c = s[i]
            if c = '\\' && i + 1 < s.Length && isAsciiLetter s[i + 1] then
                let mutable j = i + 1
                while j < s.Length && isAsciiLetter s[j] do
                    j <- j + 1
                let word = s.Substring(i + 1, j - i - 1)
                if sizingCommands.Contains word then
                    // \left. and \right. are empty delimiters
                    i <- if j < s.Length && s[j] = '.' then j + 1 else j
                elif spacingCommands.Contains word then
                    pendingSpace <- true
                    i <- j
                else
                    emit ("\\" + (if word = "dfrac" || word = "tfrac" then "frac" else word)) true
                    i <- j
            elif c = '\\' && i + 1 < s.Length then
                match s[i + 1] with
                | '!' | ',' | ';' | ':' | ' ' | '>' | '\\' -> pendingSpace <- true
                | '{' -> emit "{" false
                | '}' -> emit "}" false
                | d -> emit (String [| '\\'; d |]) false
                i <- i + 2
            elif Char.IsWhiteSpace c || c = '~' then
                pendingSpace <- true
                i <- i + 1
            else
                emit (string c) false
                i <- i + 1
        sb.ToString()

    /// `\frac12` → `\frac{1}{2}`, `\frac\pi2` → `\frac{\pi}{2}`, `\sqrt2` → `\sqrt{2}`: braces around one-token
    /// arguments (a letter, a digit or a command word). One scan; positions where an argument is due are kept
    /// in a set, so shorthand nested inside groups is rewritten too.
    let private braceShorthand (s: string) =
        let partner = matchBraces s
        let sb = StringBuilder(s.Length + 8)
        let due = Collections.Generic.HashSet<int>()
        // End of a one-token argument at i, or −1 when there is none.
        let tokenEnd (i: int) =
            if i >= s.Length then -1
            elif s[i] = '\\' && i + 1 < s.Length && isAsciiLetter s[i + 1] then
                let mutable j = i + 1
                while j < s.Length && isAsciiLetter s[j] do
                    j <- j + 1
                j
            elif Char.IsLetterOrDigit s[i] then i + 1
            else -1
        let command (i: int) (word: string) =
            startsAt s i word && not (i + word.Length < s.Length && isAsciiLetter s[i + word.Length])
        let mutable i = 0
        while i < s.Length do
            let t = if due.Contains i then tokenEnd i else -1
            if t > i then
                sb.Append('{').Append(s, i, t - i).Append('}') |> ignore
                i <- t
            elif command i @"\frac" || command i @"\sqrt" then
                let a = i + 5
                if s[i + 1] = 'f' then
                    if a < s.Length && s[a] = '{' && partner[a] > a then due.Add(partner[a] + 1) |> ignore
                    else
                        let e = tokenEnd a
                        if e > a then due.Add e |> ignore
                due.Add a |> ignore
                sb.Append(s, i, 5) |> ignore
                i <- a
            elif s[i] = '\\' && i + 1 < s.Length then
                sb.Append(s, i, 2) |> ignore
                i <- i + 2
            else
                sb.Append s[i] |> ignore
                i <- i + 1
        sb.ToString()

    /// `x^{2}` → `x^2`, `a_{1}` → `a_1`: braces around a one-character script carry nothing.
    let private unbraceScripts (s: string) =
        let sb = StringBuilder(s.Length)
        let mutable i = 0
        while i < s.Length do
            if (s[i] = '^' || s[i] = '_') && i + 3 < s.Length && s[i + 1] = '{' && s[i + 3] = '}' && Char.IsLetterOrDigit s[i + 2] then
                sb.Append(s[i]).Append(s[i + 2]) |> ignore
                i <- i + 4
            else
                sb.Append s[i] |> ignore
                i <- i + 1
        sb.ToString()

    /// Whether the bracket at 0 closes at the last character (any of ( [ { against any of ) ] }).
    let private wrapped (s: string) =
        s.Length >= 2 && "([{".IndexOf s[0] >= 0 && ")]}".IndexOf s[s.Length - 1] >= 0
        && (let mutable depth = 0
            let mutable closeAt = -1
            let mutable i = 0
            while closeAt < 0 && i < s.Length do
                match s[i] with
                | '\\' -> i <- i + 1
                | '(' | '[' | '{' -> depth <- depth + 1
                | ')' | ']' | '}' ->
                    depth <- depth - 1
                    if depth = 0 then closeAt <- i
                | _ -> ()
                i <- i + 1
            closeAt = s.Length - 1)

    /// Index of the single '=' at bracket depth 0, or −1 when there are none or several.
    let private singleTopLevel (s: string) (target: char) =
        let mutable depth = 0
        let mutable at = -1
        let mutable count = 0
        for i in 0 .. s.Length - 1 do
            match s[i] with
            | '(' | '[' | '{' -> depth <- depth + 1
            | ')' | ']' | '}' -> depth <- depth - 1
            | c when c = target && depth = 0 && (i = 0 || s[i - 1] <> '\\') ->
                count <- count + 1
                at <- i
            | _ -> ()
        if count = 1 then at else -1

    /// A single variable: `x`, `x_1`, `x_{12}`, `x'`, `\theta`, `\theta_0`.
    let private isVariable (s: string) =
        let mutable i = 0
        if s.Length > 0 && isAsciiLetter s[0] then i <- 1
        elif s.Length > 1 && s[0] = '\\' && isAsciiLetter s[1] then
            i <- 1
            while i < s.Length && isAsciiLetter s[i] do
                i <- i + 1
        else i <- -1
        if i < 0 then false
        else
            if i < s.Length && s[i] = '_' then
                if i + 1 < s.Length && Char.IsLetterOrDigit s[i + 1] then i <- i + 2
                elif i + 1 < s.Length && s[i + 1] = '{' then
                    let close = s.IndexOf('}', i + 2)
                    if close > i + 2 && Seq.forall Char.IsLetterOrDigit (s.Substring(i + 2, close - i - 2)) then i <- close + 1
                    else i <- -1
                else i <- -1
            if i >= 0 && i < s.Length && s[i] = '\'' then i <- i + 1
            i = s.Length

    /// `x=5` → `5` and `x\in[1,2]` → `[1,2]` when the left side is a single variable and there is one `=`.
    let private dropAssignment (s: string) =
        let eq = singleTopLevel s '='
        if eq > 0 && isVariable s[.. eq - 1] then s.Substring(eq + 1)
        else
            let at = s.IndexOf(@"\in", StringComparison.Ordinal)
            if at > 0 && not (at + 3 < s.Length && isAsciiLetter s[at + 3]) && isVariable s[.. at - 1] then s.Substring(at + 3)
            else s

    /// `1,000` and `-12,345,678.5` → digits alone: a whole answer of 1–3 digits then groups of exactly three.
    /// (A comma in `(1,000, 2)` separates elements; `1{,}000` is always a separator and is removed earlier.)
    let private dropThousands (s: string) =
        let mutable i = if s.Length > 0 && (s[0] = '-' || s[0] = '+') then 1 else 0
        let start = i
        while i < s.Length && isDigit s[i] do
            i <- i + 1
        let lead = i - start
        let mutable groups = 0
        let mutable ok = lead >= 1 && lead <= 3
        while ok && i < s.Length && s[i] = ',' do
            if i + 4 <= s.Length && isDigit s[i + 1] && isDigit s[i + 2] && isDigit s[i + 3] && (i + 4 = s.Length || not (isDigit s[i + 4])) then
                groups <- groups + 1
                i <- i + 4
            else ok <- false
        if ok && groups > 0 && i < s.Length && s[i] = '.' then
            let mutable j = i + 1
            while j < s.Length && isDigit s[j] do
                j <- j + 1
            ok <- j > i + 1 && j = s.Length
            i <- j
        if ok && groups > 0 && i = s.Length then s.Replace(",", "") else s

    /// Whether s has one of the operator characters outside braces and brackets.
    let private topLevelOperator (s: string) (ops: string) =
        let mutable depth = 0
        let mutable found = false
        for i in 0 .. s.Length - 1 do
            match s[i] with
            | '(' | '[' | '{' -> depth <- depth + 1
            | ')' | ']' | '}' -> depth <- depth - 1
            | c when depth = 0 && ops.IndexOf c >= 0 && (i = 0 || s[i - 1] <> '\\') -> found <- true
            | _ -> ()
        found

    /// `a/b` → `\frac{a}{b}` for simple a and b (no top-level operator, bracket or comma), with an optional
    /// leading sign: `\pi/2` ≡ `\frac{\pi}{2}`. Applied to the whole answer and to each element of a list.
    let private slashToFrac (s: string) =
        let sign, body = if s.Length > 0 && s[0] = '-' then "-", s.Substring 1 else "", s
        let slash = singleTopLevel body '/'
        if slash <= 0 || slash = body.Length - 1 then s
        else
            let a, b = body.Substring(0, slash), body.Substring(slash + 1)
            let simple (x: string) = x.IndexOfAny [| '('; ')'; '['; ']' |] < 0 && not (topLevelOperator x "+-*=,<>|")
            if simple a && simple b then sign + @"\frac{" + a + "}{" + b + "}" else s

    /// Trailing periods (end of a sentence) and white space.
    let private trimEnd (s: string) = s.Trim().TrimEnd('.').Trim()

    /// One round of the passes, in order.
    let private onePass (answer: string) =
        answer
        |> mapUnicode
        |> dropSigns
        |> stripText
        |> rewriteCommands
        |> braceShorthand
        |> unbraceScripts
        |> fun s -> s.Replace("{,}", "")
        |> trimEnd
        |> dropAssignment
        |> dropThousands
        |> slashToFrac

    /// Most rounds of the passes `normalise` runs while the string still changes.
    [<Literal>]
    let private NormaliseRounds = 4

    /// The canonical string form of an answer, used for the first, exact comparison: Unicode minus, ∞, π, ×,
    /// · mapped to LaTeX; `\left`/`\right`, spacing commands and white space removed; `\dfrac`/`\tfrac` →
    /// `\frac`; `\frac12` → `\frac{1}{2}`; `x^{2}` → `x^2`; `\{ \}` → `{ }`; degrees, `\%`, `%`, `\$`, `$` dropped (so
    /// `50\%` ≡ `50`, never 0.5); trailing `\text{…}` units dropped and other `\text{…}` unwrapped; a trailing
    /// period dropped; `x = 5` → `5` for one single-variable assignment; `1,000` → `1000` when the whole answer
    /// is digits in groups of three; `1{,}000` → `1000`; `a/b` → `\frac{a}{b}` for simple a, b. Case is kept.
    /// The passes repeat until the string stops changing (at most 4 rounds). Throws ArgumentNullException on null.
    [<CompiledName("Normalise")>]
    let normalise (answer: string) : string =
        checkNotNull "answer" answer
        // One round can expose work for another (`\}` becomes `}` and closes a `\text{`), so the rounds repeat
        // until nothing changes, at most NormaliseRounds times.
        let mutable current = answer
        let mutable next = onePass answer
        let mutable rounds = 1
        while rounds < NormaliseRounds && not (String.Equals(current, next, StringComparison.Ordinal)) do
            current <- next
            next <- onePass next
            rounds <- rounds + 1
        next

    // -----------------------------------------------------------------------------------------------------
    // Numbers: exact rationals
    // -----------------------------------------------------------------------------------------------------

    /// num / den with den > 0; Decimal marks a value written with a decimal point or an exponent, which gets
    /// the relative tolerance.
    [<Struct>]
    type private Rational = { Num: BigInteger; Den: BigInteger; Decimal: bool }

    let private pow10 (e: int) = BigInteger.Pow(BigInteger 10, e)

    /// `12`, `-3.5`, `.5`, `5.`, `1e5`, `2.5\times10^{-3}`, `2\cdot10^4`; null beyond the caps.
    let private parseLiteral (s: string) : Rational voption =
        let mutable i = 0
        let intStart = i
        while i < s.Length && isDigit s[i] do
            i <- i + 1
        let intDigits = s.Substring(intStart, i - intStart)
        let mutable fracDigits = ""
        let mutable hasPoint = false
        if i < s.Length && s[i] = '.' then
            hasPoint <- true
            let f = i + 1
            i <- f
            while i < s.Length && isDigit s[i] do
                i <- i + 1
            fracDigits <- s.Substring(f, i - f)
        let mantissa = intDigits + fracDigits
        if mantissa.Length = 0 || mantissa.Length > MaxDigits then ValueNone
        else
            // optional exponent
            let mutable exponent = 0
            let mutable hasExponent = false
            let mutable ok = true
            let readInt (j: int) =
                // [+-]digits, at most 4 digits
                let mutable k = j
                let negative = k < s.Length && s[k] = '-'
                if k < s.Length && (s[k] = '-' || s[k] = '+') then k <- k + 1
                let d = k
                while k < s.Length && isDigit s[k] && k - d < 5 do
                    k <- k + 1
                if k = d || k - d > 4 || (k < s.Length && isDigit s[k]) then struct (-1, 0)
                else struct (k, (if negative then -1 else 1) * Int32.Parse(s.AsSpan(d, k - d)))
            if i < s.Length && (s[i] = 'e' || s[i] = 'E') then
                let struct (k, e) = readInt (i + 1)
                if k < 0 then ok <- false
                else
                    exponent <- e
                    hasExponent <- true
                    i <- k
            elif startsAt s i @"\times10^" || startsAt s i @"\cdot10^" then
                let j = i + (if s[i + 1] = 't' then 9 else 8)
                if j < s.Length && s[j] = '{' then
                    let struct (k, e) = readInt (j + 1)
                    if k < 0 || k >= s.Length || s[k] <> '}' then ok <- false
                    else
                        exponent <- e
                        hasExponent <- true
                        i <- k + 1
                elif j < s.Length && isDigit s[j] then
                    exponent <- int s[j] - int '0'
                    hasExponent <- true
                    i <- j + 1
                else ok <- false
            if not ok || i <> s.Length || abs exponent > MaxExponent then ValueNone
            else
                let digits = BigInteger.Parse mantissa
                let scale = exponent - fracDigits.Length
                let num, den = if scale >= 0 then digits * pow10 scale, BigInteger.One else digits, pow10 (-scale)
                ValueSome { Num = num; Den = den; Decimal = hasPoint || hasExponent }

    /// Index of the brace closing the group that opens at i (s[i] = '{'), or −1; linear in the group.
    let private closeOf (s: string) (i: int) =
        let mutable depth = 0
        let mutable k = i
        let mutable result = -1
        while result < 0 && k < s.Length do
            match s[k] with
            | '\\' -> k <- k + 1
            | '{' -> depth <- depth + 1
            | '}' ->
                depth <- depth - 1
                if depth = 0 then result <- k
            | _ -> ()
            k <- k + 1
        result

    /// A signed number: a literal, `\frac{A}{B}`, `A/B` or `(A)` of numbers (depth-capped). No other arithmetic.
    let rec private parseNumber (s: string) (depth: int) : Rational voption =
        if depth > MaxDepth || s.Length = 0 then ValueNone
        else
            let negative = s[0] = '-'
            let body = if s[0] = '-' || s[0] = '+' then s.Substring 1 else s
            let value =
                if body.Length = 0 then ValueNone
                elif body.StartsWith(@"\frac{", StringComparison.Ordinal) then
                    let a = closeOf body 5
                    if a < 0 || a + 1 >= body.Length || body[a + 1] <> '{' then ValueNone
                    else
                        let b = closeOf body (a + 1)
                        if b <> body.Length - 1 then ValueNone
                        else ratio (body.Substring(6, a - 6)) (body.Substring(a + 2, b - a - 2)) depth
                elif body[0] = '(' && body[body.Length - 1] = ')' && wrapped body then
                    parseNumber (body.Substring(1, body.Length - 2)) (depth + 1)
                else
                    let slash = singleTopLevel body '/'
                    if slash > 0 then ratio (body.Substring(0, slash)) (body.Substring(slash + 1)) depth
                    elif isDigit body[0] || body[0] = '.' then parseLiteral body
                    else ValueNone
            match value with
            | ValueSome r when negative -> ValueSome { r with Num = -r.Num }
            | v -> v

    and private ratio (a: string) (b: string) (depth: int) =
        match parseNumber a (depth + 1), parseNumber b (depth + 1) with
        | ValueSome x, ValueSome y when not y.Num.IsZero ->
            let num, den = x.Num * y.Den, x.Den * y.Num
            let num, den = if den.Sign < 0 then -num, -den else num, den
            ValueSome { Num = num; Den = den; Decimal = x.Decimal || y.Decimal }
        | _ -> ValueNone

    /// 1 / RelativeTolerance, so that the tolerance test stays in integers.
    let private toleranceScale = BigInteger(Math.Round(1.0 / RelativeTolerance))

    /// Exact equality, or |a − b| ≤ 1e-6 · max(|a|, |b|) in exact arithmetic when either side is a decimal.
    let private numbersEqual (a: Rational) (b: Rational) =
        let left, right = a.Num * b.Den, b.Num * a.Den
        if left = right then true
        elif a.Decimal || b.Decimal then
            BigInteger.Abs(left - right) * toleranceScale <= BigInteger.Max(BigInteger.Abs left, BigInteger.Abs right)
        else false

    // -----------------------------------------------------------------------------------------------------
    // Structure: tuples, intervals, sets
    // -----------------------------------------------------------------------------------------------------

    type private Node =
        | Number of Rational
        | Atom of string
        /// Brackets compared exactly, elements in order: tuples `(a, b)`, intervals `[a, b)`.
        | Ordered of opener: char * closer: char * Node[]
        /// Order-insensitive, as multisets: sets `{a, b}` and bare lists `a, b`.
        | Unordered of Node[]
        /// Unions of intervals `A \cup B`, order-insensitive.
        | Union of Node[]
        /// Past MaxDepth: equivalent to nothing.
        | TooDeep

    /// The parts of s between top-level occurrences of the separator (commas, or `\cup`).
    let private splitTopLevel (s: string) (separator: string) =
        let parts = Collections.Generic.List<string>()
        let mutable depth = 0
        let mutable start = 0
        let mutable i = 0
        while i < s.Length do
            match s[i] with
            | '\\' when separator = "," -> i <- i + 2
            | '(' | '[' | '{' ->
                depth <- depth + 1
                i <- i + 1
            | ')' | ']' | '}' ->
                depth <- depth - 1
                i <- i + 1
            | c when c = separator[0] && depth = 0 && startsAt s i separator && not (separator.Length > 1 && i + separator.Length < s.Length && isAsciiLetter s[i + separator.Length]) ->
                parts.Add(s.Substring(start, i - start))
                i <- i + separator.Length
                start <- i
            | '\\' -> i <- i + 2
            | _ -> i <- i + 1
        parts.Add(s.Substring(min start s.Length))
        parts.ToArray() |> Array.map (fun p -> p.Trim())

    /// The deepest bracket nesting of s ( ( [ { against ) ] } ), escapes skipped.
    let private nesting (s: string) =
        let mutable depth = 0
        let mutable deepest = 0
        let mutable i = 0
        while i < s.Length do
            match s[i] with
            | '\\' -> i <- i + 1
            | '(' | '[' | '{' ->
                depth <- depth + 1
                deepest <- max deepest depth
            | ')' | ']' | '}' -> depth <- depth - 1
            | _ -> ()
            i <- i + 1
        deepest

    let rec private parse (s: string) (depth: int) : Node =
        if depth > MaxDepth then TooDeep
        else
            let unionParts = if s.Contains @"\cup" then splitTopLevel s @"\cup" else [| s |]
            if unionParts.Length > 1 then Union(unionParts |> Array.map (fun p -> parse p (depth + 1)))
            elif wrapped s then
                let o, c = s[0], s[s.Length - 1]
                let inner = s.Substring(1, s.Length - 2)
                let parts = splitTopLevel inner ","
                if parts.Length = 1 then
                    if (o = '(' && c = ')') || (o = '[' && c = ']') || (o = '{' && c = '}') then parse inner (depth + 1)
                    else Atom s
                elif o = '{' && c = '}' then Unordered(parts |> Array.map (fun p -> parse p (depth + 1)))
                elif o = '{' || c = '}' then Atom s
                else Ordered(o, c, parts |> Array.map (fun p -> parse p (depth + 1)))
            else
                let parts = splitTopLevel s ","
                if parts.Length > 1 then Unordered(parts |> Array.map (fun p -> parse p (depth + 1)))
                else
                    let atom = slashToFrac s
                    match parseNumber atom 0 with
                    | ValueSome r -> Number r
                    | ValueNone -> Atom atom

    /// Work left for one comparison; structured comparisons answer false once it is spent.
    type private Allowance(initial: int) =
        let mutable left = initial
        member _.Spend(cost: int) =
            left <- left - cost
            left >= 0

    /// A key that only equivalent leaves share: the atom's string, or the number's value in lowest terms;
    /// null for groups.
    let private key (node: Node) : string | null =
        match node with
        | Atom s -> "a:" + s
        | Number r ->
            let g = BigInteger.GreatestCommonDivisor(r.Num, r.Den)
            let g = if g.IsZero then BigInteger.One else g
            $"n:{r.Num / g}/{r.Den / g}"
        | _ -> null

    let rec private same (budget: Allowance) (a: Node) (b: Node) =
        match a, b with
        | TooDeep, _
        | _, TooDeep -> false
        | Number x, Number y -> budget.Spend(1 + (x.Num.GetByteCount() + y.Num.GetByteCount()) / 8) && numbersEqual x y
        | Atom x, Atom y -> budget.Spend(1 + min x.Length y.Length) && String.Equals(x, y, StringComparison.Ordinal)
        | Ordered(o1, c1, xs), Ordered(o2, c2, ys) ->
            o1 = o2 && c1 = c2 && xs.Length = ys.Length && budget.Spend 1 && Array.forall2 (same budget) xs ys
        | Unordered xs, Unordered ys
        | Union xs, Union ys -> xs.Length = ys.Length && budget.Spend 1 && matchAll budget xs ys
        | _ -> false

    /// Multiset matching: elements with equal keys (the same string, the same exact value) pair first in
    /// linear time, so reordered large sets match; each remaining x then takes the first unused y equivalent
    /// to it (greedy, within the budget).
    and private matchAll (budget: Allowance) (xs: Node[]) (ys: Node[]) =
        let used = Array.zeroCreate ys.Length
        let matched = Array.zeroCreate xs.Length
        let byKey = Collections.Generic.Dictionary<string, Collections.Generic.Stack<int>>()
        for j in ys.Length - 1 .. -1 .. 0 do
            match key ys[j] with
            | null -> ()
            | k ->
                match byKey.TryGetValue k with
                | true, js -> js.Push j
                | _ -> byKey[k] <- Collections.Generic.Stack [ j ]
        for i in 0 .. xs.Length - 1 do
            match key xs[i] with
            | null -> ()
            | k ->
                match byKey.TryGetValue k with
                | true, js when js.Count > 0 ->
                    let j = js.Pop()
                    used[j] <- true
                    matched[i] <- true
                | _ -> ()
        xs
        |> Array.mapi (fun i x -> struct (i, x))
        |> Array.forall (fun struct (i, x) ->
            matched[i]
            || (let mutable hit = -1
                let mutable j = 0
                while hit < 0 && j < ys.Length do
                    if not used[j] && same budget x ys[j] then hit <- j
                    j <- j + 1
                if hit >= 0 then used[hit] <- true
                hit >= 0))

    /// Whether two answers are equivalent: equal `normalise` forms (empty answers are never equivalent); else
    /// equal numbers (integers, decimals, `.5`, `a/b`, `\frac{a}{b}`, signs, `1e5`, `2\times10^{3}`, compared as
    /// exact rationals; when either is written as a decimal, within a relative 1e-6); else equal structure:
    /// tuples and intervals element-wise with the same brackets (`[1, 2)` ≢ `[1, 2]`), sets `{…}` and bare
    /// lists `a, b` as multisets (`{1, 2}` ≡ `2, 1`), unions `A \cup B` order-insensitively; a single value in
    /// matching brackets is the value (`(5)` ≡ `5`). Answers nested deeper than 64 brackets are equivalent
    /// only when their canonical strings are equal.
    /// Numbers are exact, so nothing overflows to infinity: `1e400` equals a 1 followed by 400 zeros and not
    /// `2e400`; past 1,000 digits or exponent 1,000 they are compared as strings. Elements in a list keep their
    /// assignments (`x=1, y=2` ≡ `y=2, x=1` but ≢ `x=2, y=1`). Throws ArgumentNullException on null.
    [<CompiledName("Equivalent")>]
    let equivalent (predicted: string) (reference: string) : bool =
        checkNotNull "predicted" predicted
        checkNotNull "reference" reference
        let p, r = normalise predicted, normalise reference
        if p.Length = 0 || r.Length = 0 then false
        elif String.Equals(p, r, StringComparison.Ordinal) then true
        elif nesting p > MaxDepth || nesting r > MaxDepth then false
        else same (Allowance Budget) (parse p 0) (parse r 0)

    /// The reference answer of a ground truth: the content of its last `\boxed{…}` when it has one (worked
    /// solutions), else the whole string.
    [<CompiledName("ReferenceAnswer")>]
    let referenceAnswer (groundTruth: string) : string =
        match lastBoxed groundTruth with
        | null -> groundTruth
        | boxed -> boxed

    /// Verify(y, y*): the response has a last boxed answer and it is `equivalent` to the reference answer of the
    /// ground truth. A response without a (closed) box fails.
    [<CompiledName("Verify")>]
    let verify (response: string) (groundTruth: string) : bool =
        checkNotNull "groundTruth" groundTruth
        match lastBoxed response with
        | null -> false
        | answer -> equivalent answer (referenceAnswer groundTruth)

    /// `verify` as a reward: 1.0 or 0.0.
    [<CompiledName("Score")>]
    let score (response: string) (groundTruth: string) : float = if verify response groundTruth then 1.0 else 0.0
