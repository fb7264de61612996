module Trd.Tests.VerifierTests

open System
open System.Diagnostics
open Expecto

open FsCheck.FSharp
open Trd.Core

let private T, F = true, false

/// (predicted answer, reference answer, equivalent?), checked in both directions.
let answerCases : (string * string * bool) list =
    [
      // \frac, \dfrac, \tfrac and shorthand
      @"\frac{1}{2}", "0.5", T
      @"\frac{1}{2}", "0.51", F
      @"\dfrac{3}{4}", @"\frac34", T
      @"\tfrac{3}{4}", "0.75", T
      @"\dfrac{3}{4}", @"\frac{4}{3}", F
      @"\frac12", @"\frac{1}{2}", T
      @"\frac1{2}", @"\frac{1}{2}", T
      @"\frac{1}2", "1/2", T
      @"\frac\pi2", @"\frac{\pi}{2}", T
      @"\frac{\frac12}{3}", @"\frac{1}{6}", T
      @"\frac{\frac12}{3}", @"\frac{1}{5}", F
      @"\frac{\sqrt{3}}{2}", @"\frac{\sqrt3}2", T
      @"\frac{\sqrt{3}}{2}", @"\frac{\sqrt{2}}{2}", F
      // \left / \right and sizing
      @"\left(1,2\right)", "(1,2)", T
      @"\left[0,1\right)", "[0,1)", T
      @"\left[0,1\right)", "[0,1]", F
      @"\left|x\right|", "|x|", T
      @"\bigl(1, 2\bigr)", "(1,2)", T
      @"\left.\frac{1}{2}\right.", "0.5", T
      @"\left\{ 1, 2 \right\}", @"\{2,1\}", T
      // \text units and text answers
      @"5\text{ cm}", "5", T
      @"5\text{ cm}", "6", F
      @"12 \text{ inches}", "12", T
      @"3\mbox{ units}", "3", T
      @"4\mathrm{~m}", "4", T
      @"5\text{ cm}^2", "5", T
      @"5\text{ m}^{2}", "5", T
      @"10\text{ m}\text{/s}", "10", T
      @"\text{5 cm}", "5", F // a box holding only text is an answer, not a unit
      @"\text{Monday}", "Monday", T
      @"\text{Monday}", "Tuesday", F
      @"\textbf{(B)}", "B", T
      @"\text{(B)}", "C", F
      @"\text{(A)}", "(A)", T
      // percent: the sign goes, the value stays (50% ≡ 50, not 0.5)
      @"50\%", "50", T
      "50%", "50", T
      @"50\%", "0.5", F
      @"12.5\%", "12.5", T
      @"50\%", "5", F
      @"50\%", @"50%", T
      // degrees
      @"90^\circ", "90", T
      @"90^{\circ}", "90", T
      "90°", "90", T
      @"45\degree", "45", T
      @"90^\circ", "45", F
      @"30^\circ", @"\frac{\pi}{6}", F // no unit conversion
      @"60{}^\circ", "60", T
      // spaces and spacing commands
      "1 / 2", "1/2", T
      "x + 1", "x+1", T
      @"2 \pi", @"2\pi", T
      @"3\!\cdot\!4", @"3\cdot4", T
      @"a\,b", "ab", T
      @"\pi r^2", @"\pi r^{2}", T
      @"\pi r^2", @"\pir^2", F // the space ends the command word
      @"\displaystyle\frac{1}{2}", "1/2", T
      @"x\quad+\quad1", "x+1", T
      "x+1", "x+2", F
      // a/b
      "1/2", @"\frac{1}{2}", T
      "3/4", "0.75", T
      "-3/4", "-0.75", T
      "3/4", "4/3", F
      @"\pi/2", @"\frac{\pi}{2}", T
      @"\pi/2", @"\frac{\pi}{3}", F
      "a/b", @"\frac{a}{b}", T
      "(a+1)/b", @"\frac{a+1}{b}", F // only simple a, b are rewritten
      "1/0", "1/0", T // equal as strings
      "1/0", "2/0", F // not numbers
      "2/4", "1/2", T
      // decimals
      "0.50", "0.5", T
      "2.0", "2", T
      "3.14", "3.15", F
      "0.1", "0.10000001", T
      "0.1", "0.1001", F
      "100", "100.001", F
      "1000000.0", "1000000.5", T // within 1e-6 relative: a decimal side gets the tolerance
      "1000000", "1000001", F // integers compare exactly
      "0", "0.0", T
      "0", "0.0000001", F // relative tolerance: nothing but zero equals zero
      "-0", "0", T
      "+5", "5", T
      // leading-dot and trailing-dot numbers
      ".5", "0.5", T
      "-.5", "-0.5", T
      ".5", "5", F
      ".25", "1/4", T
      "5.", "5", T
      // numeric tolerance against fractions
      "0.3333333", "1/3", T
      "0.333", "1/3", F
      "0.33333333333", @"\frac{1}{3}", T
      "0.6666667", @"\frac{2}{3}", T
      "0.6666", @"\frac{2}{3}", F
      "3.1415927", @"\pi", F
      "10/3", "3.3333333", T
      // exact integers of any size up to the cap
      "12345678901234567890", "12345678901234567891", F
      "12345678901234567890", "12345678901234567890.0", T
      "99999999999999999999", "100000000000000000000", F
      // negatives and Unicode minus
      "-5", "\u22125", T
      "-5", "5", F
      @"\frac{-1}{2}", @"-\frac12", T
      @"\frac{1}{-2}", "-0.5", T
      @"-\frac{-1}{2}", "0.5", T
      @"-\frac{1}{2}", "0.5", F
      "--5", "5", F
      @"−\frac{1}{2}", "-0.5", T
      "−5", "5", F
      "x−1", "x-1", T
      // dollars
      @"\$5", "5", T
      "$5$", "5", T
      @"\$5.00", "5", T
      @"\$5", "6", F
      @"\$1,000", "1000", T
      // trailing period
      "5.", "5", T
      "x+1.", "x+1", T
      "7..", "7", T
      "5.", "6", F
      // single-variable assignment
      "x = 5", "5", T
      "x=5", "6", F
      "y = 2x + 3", "2x+3", T
      "x_1 = 3", "3", T
      "x_{12} = 3", "3", T
      @"\theta = 30^\circ", "30", T
      "f(x) = 5", "5", F // not a single variable
      "x = y = 5", "5", F // two assignments
      "k=1,2", @"\{1,2\}", T
      @"x \in [1, 2]", "[1,2]", T
      @"x \in [1, 2]", "[1,2)", F
      "x = 5", "y = 5", T // both sides reduce to 5
      "x=1,y=2", "y=2,x=1", T
      "x=2,y=1", "x=1,y=2", F
      // thousands separators: a whole answer of digit groups of three
      "1,000", "1000", T
      "1,000,000", "1000000", T
      "1,000.5", "1000.5", T
      "-12,345", "-12345", T
      "1{,}000", "1000", T
      @"1\,000", "1000", T
      "1,000", "1001", F
      "1,00", "100", F // not groups of three: the list {1, 00}
      "1,2345", "12345", F
      "(1,000)", "1000", F // inside brackets a comma separates elements
      "1,000", "\\{1, 0\\}", F
      // intervals
      "(0,1)", "(0, 1)", T
      "[0,1)", "[0,1)", T
      "[0,1)", "(0,1]", F
      "[0,1)", "[0,1]", F
      @"(-\infty, 3]", @"(-\infty,3]", T
      "(-\u221E, 3]", @"(-\infty, 3]", T
      @"(-\infty, 3]", @"(\infty, 3]", F
      @"[0.5, 1]", @"[\frac12, 1]", T
      @"[1,2]\cup[3,4]", @"[3,4]\cup[1,2]", T
      @"[1,2]\cup[3,4]", @"[1,2]\cup[3,5]", F
      @"(-\infty,1)\cup(2,\infty)", @"(-\infty, 1) \cup (2, \infty)", T
      @"(-\infty,1)\cup(2,\infty)", @"(-\infty,1]\cup(2,\infty)", F
      "(1,2)", "(2,1)", F
      // sets and bare lists: order-insensitive multisets
      @"\{1,2,3\}", @"\{3,2,1\}", T
      @"\{1,2\}", @"\{1,2,3\}", F
      @"\{1,1,2\}", @"\{1,2\}", F
      "1,2,3", "3, 1, 2", T
      "1,2,3", "3, 1, 4", F
      @"\{\frac12, 2\}", @"\{2, 0.5\}", T
      "{1,2}", @"\{1,2\}", T
      @"\{1,2\}", "2,1", T
      @"\{-1, 1\}", @"\{1, -1\}", T
      @"\{-1, 1\}", @"\{1\}", F
      // tuples: element-wise
      "(1, 2)", "(1,2)", T
      "(1,2,3)", "(1,2)", F
      @"(\frac12, -1)", "(0.5, -1)", T
      @"(\frac12, -1)", "(0.5, 1)", F
      "((1,2),(3,4))", "((1, 2), (3, 4))", T
      "((1,2),(3,4))", "((1,2),(3,5))", F
      "((0.5,2),(3,4))", "((1/2,2),(3,4))", T
      @"\{(1,2),(3,4)\}", @"\{(3,4),(1,2)\}", T
      @"\{(1,2),(3,4)\}", @"\{(2,1),(3,4)\}", F
      "(1,2)", "1,2", F // a tuple is not a list
      "(1,2)", @"\{1,2\}", F
      "[1,2]", "(1,2)", F
      // one value in matching brackets is the value
      "(5)", "5", T
      "[5]", "5", T
      @"\{5\}", "5", T
      "(5)", "6", F
      "(A)", "A", T
      // huge numbers: no overflow to infinity
      "1e400", "1e400", T
      "1e400", "2e400", F
      "1e400", "1e401", F
      "1e400", @"\infty", F
      "1" + String('0', 399), "1e399", T
      "1" + String('0', 399), "1" + String('0', 398) + "1", F
      "1" + String('0', 2000), "1" + String('0', 1999) + "1", F // past the digit cap: strings
      "1e5000", "1e5000", T
      "1e5000", "1e5001", F
      "1e-400", "0", F
      // NaN and infinity strings are text, not numbers
      "NaN", "NaN", T
      "NaN", "0", F
      "nan", "NaN", F // case is kept
      "Infinity", @"\infty", F
      "NaN", "1e400", F
      "inf", "1e400", F
      // no arithmetic is evaluated
      "0.1+0.2", "0.3", F
      "2+3", "5", F
      @"2\cdot3", "6", F
      @"\sqrt{4}", "2", F
      "2^{10}", "1024", F
      "0.1+0.2", "0.1 + 0.2", T
      @"\sqrt{2}", "1.41421356", F
      @"2\sqrt{2}", @"\sqrt{8}", F
      @"\sqrt2", @"\sqrt{2}", T
      // scientific notation
      @"2.5\times10^{-3}", "0.0025", T
      "1.5e3", "1500", T
      @"3\times10^5", "300000", T
      @"3 \times 10^{5}", "300000", T
      @"2\cdot10^{3}", "2000", T
      "1e-3", "0.001", T
      "1e3", "1001", F
      "1E3", "1000", T
      // scripts
      "x^{2}", "x^2", T
      "x^{2}", "x^3", F
      "a_{1}", "a_1", T
      "x^{10}", "x^10", F
      // symbols
      @"\infty", "\u221E", T
      @"-\infty", @"\infty", F
      @"2\pi", "2\u03C0", T
      "A", "a", F
      "x", "X", F
      // empty answers are never equivalent
      "", "", F
      "", "5", F
      @"\text{}", "", F
      " ", " ", F
      "$ $", "$ $", F
      // unbalanced and stray characters
      "(1,2", "(1,2", T
      "(1,2", "(1,2)", F
      "{5", "5", F
      "5}", "5", F
      "[1,2)}", "[1,2)", F
      @"\frac{1}{2", "0.5", F
    ]

/// (response, ground truth, Verify?).
let responseCases : (string * string * bool) list =
    [
      @"The answer is \boxed{5}.", "5", T
      @"\boxed{5}", "6", F
      "no box here: 5", "5", F
      "", "5", F
      @"First \boxed{1}, then \boxed{2}.", "2", T
      @"First \boxed{1}, then \boxed{2}.", "1", F
      @"\fbox{7}", "7", T
      @"\boxed{1} then \fbox{2}", "2", T
      @"\fbox{1} then \boxed{2}", "2", T
      @"\fbox{1} then \boxed{2}", "1", F
      @"so \boxed{\frac{1}{2}}", "1/2", T
      @"so \boxed{\frac{\sqrt{3}}{2}}", @"\frac{\sqrt3}{2}", T
      @"\boxed{2} and finally \boxed{3", "3", F // the last box is unclosed: no answer
      @"\boxed{2} and finally \boxed{3", "2", F
      @"\boxed{}", "5", F
      @"\boxed{}", "", F
      @"$\boxed 5$", "5", T
      @"\boxed 5", "5", T
      @"\boxed 5", "6", F
      @"\boxed {5}", "5", T
      @"\boxed{\{1,2\}}", @"\{2,1\}", T
      @"\boxed{\{1,2\}}", @"\{1,3\}", F
      @"\boxed{5", "5", F
      @"}\boxed{5}{", "5", T
      @"}}\boxed{5}}}", "5", T
      @"text \boxed{x^{2}} text", "x^2", T
      @"\boxed{\boxed{5}}", "5", T
      @"\boxed{5}\boxed{}", "5", F
      @"\boxed{5}", @"The answer is $\boxed{5}$.", T
      @"\boxed{12}", @"So we get \boxed{12}", T
      @"\boxed{12}", @"So we get \boxed{13}", F
      @"\boxedx{5}", "5", F // not the \boxed command
      @"Thus $x = \boxed{3}$ is the answer", "3", T
      @"\boxed{x=3}", "3", T
      @"\boxed{(1,2}", "(1,2", T
      @"\boxed{(1,2}", "(1,2)", F
      @"\boxed{{5}", "5", F
      @"\boxed{5}}", "5", T
      @"\boxed{\frac{1}{2}} is \boxed{0.5}", @"\frac12", T
      @"\boxed{50\%}", "50", T
      @"\boxed{90^\circ}", "90", T
      @"\boxed{5\text{ cm}}", "5", T
      @"\boxed{\left( 1, 2 \right)}", "(1,2)", T
      @"\boxed{\dfrac{1}{3}}", "0.3333333", T
      @"\boxed{1,000}", "1000", T
      @"\boxed{−5}", "-5", T
      @"\boxed{\$5}", "5", T
      @"\boxed{\\}", @"\\", F // a line break only: empty
      @"\boxed{\}}", @"\}", T
      @"\boxed{5}" + String('x', 10000), "5", T
      @"\boxed", "5", F
      @"\boxed ", "5", F
      @"\boxed $5$", "5", F // \boxed followed by '$': no content before it
    ]

/// A response made of LaTeX-ish tokens, for properties that want structure rather than noise.
let private tokenSoup : FsCheck.Gen<string> =
    let tokens =
        [| @"\boxed{"; @"\fbox{"; "{"; "}"; @"\{"; @"\}"; "("; ")"; "["; "]"; ","; "1"; "2"; "0.5"; ".5"; "-"; "\u2212"; "/"
           @"\frac"; @"\dfrac"; @"\sqrt"; @"\left"; @"\right"; @"\text{"; " cm}"; @"^\circ"; @"\%"; "%"; "$"; @"\$"; "="; "x"
           " "; "."; @"\"; "e5"; "1e400"; @"\times10^{"; @"\cup"; @"\infty"; @"\,"; "\n"; "^"; "_"; "1,000"; "{,}"; "\u00B0" |]
    gen {
        let! n = Gen.choose (0, 30)
        let! parts = Gen.arrayOfLength n (Gen.elements tokens)
        return String.concat "" parts
    }

let private soups = Arb.fromGen tokenSoup
let private soupPairs = Arb.fromGen (Gen.zip tokenSoup tokenSoup)

/// Runs f and fails when it takes longer than the bound.
let private within (seconds: float) (what: string) (f: unit -> 'a) =
    f () |> ignore // JIT and caches
    let sw = Stopwatch.StartNew()
    let r = f ()
    sw.Stop()
    Expect.isLessThan sw.Elapsed.TotalSeconds seconds $"{what} took {sw.Elapsed.TotalSeconds:F3} s"
    r

let private megabyte = 1 <<< 20

[<Tests>]
let tests =
    testList "Verifier" [
        testList "answer table" [
            for i, (a, b, expected) in List.indexed answerCases do
                let show (s: string) = if s.Length > 40 then s.Substring(0, 20) + $"…({s.Length} chars)" else s
                testCase $"{i}: {show a} vs {show b} is {expected}" <| fun () ->
                    Expect.equal (Verifier.equivalent a b) expected $"equivalent {a} {b}"
                    Expect.equal (Verifier.equivalent b a) expected $"equivalent {b} {a} (swapped)"
        ]

        testList "response table" [
            for i, (response, truth, expected) in List.indexed responseCases do
                let show (s: string) = if s.Length > 40 then s.Substring(0, 20) + $"…({s.Length} chars)" else s
                testCase $"{i}: {show response} against {show truth} is {expected}" <| fun () ->
                    Expect.equal (Verifier.verify response truth) expected "verify"
                    Expect.equal (Verifier.score response truth) (if expected then 1.0 else 0.0) "score"
        ]

        testCase "the tables hold at least 200 cases with both outcomes" <| fun () ->
            let all = (answerCases |> List.map (fun (_, _, e) -> e)) @ (responseCases |> List.map (fun (_, _, e) -> e))
            Expect.isGreaterThanOrEqual all.Length 200 "cases"
            Expect.isGreaterThan (all |> List.filter id |> List.length) 80 "positives"
            Expect.isGreaterThan (all |> List.filter not |> List.length) 80 "negatives"

        testList "lastBoxed" [
            testCase "returns the content of the last box, nested braces matched" <| fun () ->
                Expect.equal (Verifier.lastBoxed @"a \boxed{1} b \boxed{\frac{1}{2}} c") @"\frac{1}{2}" "last"
                Expect.equal (Verifier.lastBoxed @"\fbox{x} \boxed{y}") "y" "boxed after fbox"
                Expect.equal (Verifier.lastBoxed @"\boxed{y} \fbox{x}") "x" "fbox after boxed"
                Expect.equal (Verifier.lastBoxed @"\boxed{a{b{c}d}e}") "a{b{c}d}e" "nested"
                Expect.equal (Verifier.lastBoxed @"\boxed{\{1\}}") @"\{1\}" "escaped braces"
                Expect.equal (Verifier.lastBoxed @"\boxed{}") "" "empty box"
                Expect.equal (Verifier.lastBoxed "$\\boxed 42$ and more") "42" "unbraced up to $"
                Expect.equal (Verifier.lastBoxed "\\boxed 42\nnext line") "42" "unbraced up to the line end"
            testCase "returns null without a box, for an unclosed last box and for a bare \\boxed" <| fun () ->
                Expect.isNull (Verifier.lastBoxed "no box") "none"
                Expect.isNull (Verifier.lastBoxed @"\boxed{1} \boxed{2") "unclosed last"
                Expect.isNull (Verifier.lastBoxed @"\boxed{1} \boxed") "bare last"
                Expect.isNull (Verifier.lastBoxed @"\boxedfoo{1}") "not the command"
                Expect.isNull (Verifier.lastBoxed "") "empty"
            testCase "null arguments raise ArgumentNullException" <| fun () ->
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.lastBoxed null |> ignore) "lastBoxed"
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.normalise null |> ignore) "normalise"
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.equivalent null "1" |> ignore) "equivalent predicted"
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.equivalent "1" null |> ignore) "equivalent reference"
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.verify null "1" |> ignore) "verify response"
                Expect.throwsT<ArgumentNullException> (fun () -> Verifier.verify @"\boxed{1}" null |> ignore) "verify ground truth"
            testProperty "a balanced box after any box-free prefix returns its content" <|
                Prop.forAll (Arb.fromGen (Gen.zip (Gen.elements [ ""; "so "; "}}"; "{{"; @"\boxed{"; "$" ]) (Gen.arrayOf (Gen.elements [ "a"; "1"; ","; " "; "{"; "}"; @"\{"; @"\}" ]))))
                    (fun (prefix, parts) ->
                        // balance the braces of the content: drop each '}' that closes nothing, close what stays open
                        let kept = Collections.Generic.List<string>()
                        let mutable depth = 0
                        for p in parts do
                            if p = "}" then
                                if depth > 0 then
                                    depth <- depth - 1
                                    kept.Add p
                            else
                                if p = "{" then depth <- depth + 1
                                kept.Add p
                        let content = String.concat "" kept + String('}', depth)
                        Expect.equal (Verifier.lastBoxed (prefix + @"\boxed{" + content + "} the end")) content "content")
        ]

        testList "normalise" [
            testCase "canonical forms on hand cases" <| fun () ->
                for input, expected in
                    [ @"\left( 1, 2 \right)", "(1,2)"; @"\dfrac{1}{2}", @"\frac{1}{2}"; @"\frac\pi2", @"\frac{\pi}{2}"
                      @"5 \text{ cm}^2", "5"; @"\text{(A)}", "(A)"; @"50\%", "50"; "90°", "90"; @"\$1,000.50", "1000.50"
                      "x = 5", "5"; @"x\in[1,2]", "[1,2]"; "1{,}000", "1000"; @"\pi r^2", @"\pi r^2"; @"-1/2", @"-\frac{1}{2}"
                      "\u22125", "-5"; "5.", "5"; @"\left\{1,2\right\}", "{1,2}"; @"\sqrt[3]{2}", @"\sqrt[3]{2}" ] do
                    Expect.equal (Verifier.normalise input) expected input
            testProperty "normalise is idempotent on LaTeX-ish strings" <|
                Prop.forAll soups (fun s ->
                    let once = Verifier.normalise s
                    Expect.equal (Verifier.normalise once) once $"normalise twice: {s}")
        ]

        testList "never throws" [
            testProperty "on arbitrary strings" <| fun (s: string) (t: string) ->
                let s, t = (if isNull s then "" else s), (if isNull t then "" else t)
                Verifier.lastBoxed s |> ignore
                Verifier.normalise s |> ignore
                Verifier.equivalent s t |> ignore
                Verifier.verify s t |> ignore
            testProperty "on LaTeX-ish strings" <|
                Prop.forAll soupPairs (fun (s, t) ->
                    Verifier.lastBoxed s |> ignore
                    Verifier.normalise s |> ignore
                    Verifier.equivalent s t |> ignore
                    Verifier.verify s t |> ignore)
            testProperty "equivalent is symmetric" <|
                Prop.forAll soupPairs (fun (s, t) -> Expect.equal (Verifier.equivalent s t) (Verifier.equivalent t s) $"{s} | {t}")
            testProperty "equivalent is reflexive on non-empty answers" <|
                Prop.forAll soups (fun s -> Expect.equal (Verifier.equivalent s s) (Verifier.normalise s <> "") s)
            testProperty "a boxed answer verifies against itself exactly when it is non-empty" <|
                Prop.forAll soups (fun s ->
                    let response = @"\boxed{" + s + "}"
                    match Verifier.lastBoxed response with
                    | null -> ()
                    | a -> Expect.equal (Verifier.verify response a) (Verifier.equivalent a a) s)
        ]

        testSequenced <| testList "bounded time" [
            testCase "a megabyte of nested braces returns within 2 s" <| fun () ->
                let s = String('{', megabyte / 2) + String('}', megabyte / 2)
                within 2.0 "lastBoxed" (fun () -> Verifier.lastBoxed s) |> ignore
                within 2.0 "normalise" (fun () -> Verifier.normalise s) |> ignore
                Expect.isFalse (within 2.0 "equivalent" (fun () -> Verifier.equivalent s "5")) "not 5"
                Expect.isFalse (within 2.0 "equivalent to a near copy" (fun () -> Verifier.equivalent s (s + "1"))) "too deep to compare"
                Expect.isTrue (within 2.0 "equivalent to itself" (fun () -> Verifier.equivalent s s)) "equal strings"
                Expect.isFalse (within 2.0 "verify" (fun () -> Verifier.verify (@"\boxed{" + s + "}") "5")) "verify"
            testCase "a megabyte of unclosed \\boxed{ returns within 2 s" <| fun () ->
                let s = String.replicate (megabyte / 7) @"\boxed{"
                Expect.isNull (within 2.0 "lastBoxed" (fun () -> Verifier.lastBoxed s)) "unclosed"
                Expect.isFalse (within 2.0 "verify" (fun () -> Verifier.verify s "1")) "verify"
                within 2.0 "normalise" (fun () -> Verifier.normalise s) |> ignore
            testCase "a megabyte of closed nested \\boxed{ returns within 2 s" <| fun () ->
                let s = String.replicate (megabyte / 8) @"\boxed{" + "7" + String('}', megabyte / 8)
                Expect.equal (within 2.0 "lastBoxed" (fun () -> Verifier.lastBoxed s)) "7" "innermost box"
                Expect.isTrue (within 2.0 "verify" (fun () -> Verifier.verify s "7")) "verify"
            testCase "a megabyte of boxed content returns within 2 s" <| fun () ->
                let digits = String('1', megabyte)
                let s = @"\boxed{" + digits + "}"
                Expect.equal (within 2.0 "lastBoxed" (fun () -> Verifier.lastBoxed s)).Length megabyte "content"
                Expect.isFalse (within 2.0 "verify against 1" (fun () -> Verifier.verify s "1")) "not 1"
                Expect.isTrue (within 2.0 "verify against itself" (fun () -> Verifier.verify s digits)) "itself"
                let fracs = @"\boxed{" + String.replicate (megabyte / 6) @"\frac{" + "}"
                Expect.isFalse (within 2.0 "unbalanced fractions" (fun () -> Verifier.verify fracs "1")) "fractions"
            testCase "a megabyte of structured answers returns within 2 s" <| fun () ->
                let xs = Array.init 100_000 string
                let set = "\\{" + String.concat ", " xs + "\\}"
                let reversed = "\\{" + String.concat ", " (Array.rev xs) + "\\}"
                let shifted = "\\{" + String.concat ", " (Array.map (fun i -> string (int i + 1)) xs) + "\\}"
                Expect.isTrue (within 2.0 "reordered set" (fun () -> Verifier.equivalent set reversed)) "reordered set"
                Expect.isFalse (within 2.0 "different set" (fun () -> Verifier.equivalent set shifted)) "different set"
                let decimals = "\\{" + String.concat ", " (Array.map (fun i -> i + ".0000000001") xs) + "\\}"
                within 2.0 "set needing tolerant matching" (fun () -> Verifier.equivalent decimals reversed) |> ignore
                let deep (tail: string) = String('(', 60) + String.concat "," xs + tail + String(')', 60)
                Expect.isFalse (within 2.0 "60 levels deep" (fun () -> Verifier.equivalent (deep "") (deep ",x"))) "deep tuples"
                let sets = String.replicate 10_000 "\\{1,\\{2,3\\}\\}," + "0"
                within 2.0 "sets of sets" (fun () -> Verifier.equivalent sets (sets.Replace("1", "4"))) |> ignore
                let units = "5" + String.replicate (megabyte / 8) @"\text{a}"
                Expect.isTrue (within 2.0 "many unit groups" (fun () -> Verifier.equivalent units "5")) "units"
        ]
    ]
