/// Qwen3's chat format against hand-checked strings (each also checked once against Qwen3's Jinja chat_template
/// rendered by @huggingface/jinja 0.5.11) and, on the real tokenizer, hand-checked token ids.
module Trd.Tests.ChatTemplateTests

open System
open Expecto
open Trd.Runtime.Tokenization

let private user = ChatMessage.User
let private system = ChatMessage.System
let private assistant content = ChatMessage.Assistant content

let private render (messages: ChatMessage list) addGenerationPrompt enableThinking =
    ChatTemplate.Render(messages |> List.toArray, addGenerationPrompt, enableThinking)

let private stringTests =
    testList "strings" [
        testCase "a user turn and the generation prompt: <|im_start|>user\\n…<|im_end|>\\n<|im_start|>assistant\\n" <| fun () ->
            Expect.equal (render [ user "What is 2+2?" ] true true)
                "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n" "thinking on adds nothing"

        testCase "enable_thinking = false adds an empty think block after the generation prompt" <| fun () ->
            Expect.equal (render [ user "What is 2+2?" ] true false)
                "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" "thinking off"

        testCase "a leading system turn comes first in its own block" <| fun () ->
            Expect.equal (render [ system "You are a helpful assistant."; user "Hi" ] true false)
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
                "system, user, prompt"

        testCase "an assistant turn before the last user turn loses its reasoning" <| fun () ->
            Expect.equal (render [ system "S"; user "Q1"; assistant "<think>\nfirst thoughts\n</think>\n\nA1"; user "Q2" ] true true)
                "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"
                "history"

        testCase "a final assistant turn always gets a think block, empty without reasoning" <| fun () ->
            Expect.equal (render [ user "Q"; assistant "A" ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n" "no reasoning"
            Expect.equal (render [ user "Q"; ChatMessage.Assistant("A", "\nsteps\n") ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nsteps\n</think>\n\nA<|im_end|>\n" "reasoning given apart, newlines trimmed"

        testCase "assistant turns after the last user turn keep their reasoning; one without reasoning that is not last gets none" <| fun () ->
            Expect.equal (render [ user "Q"; assistant "<think>\nr1\n</think>\n\nA1"; assistant "A2" ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n"
                "both after the query"
            Expect.equal (render [ user "Q"; assistant "plain"; user "Q2"; assistant "\n\nA2" ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nplain<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n"
                "leading newlines of the last answer are trimmed"

        testCase "reasoning is what precedes the first </think> after the last <think>; the answer what follows the last </think>" <| fun () ->
            Expect.equal (render [ user "Q"; assistant "x<think>\n\na\n</think>b</think>\n\nfinal\n" ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\na\n</think>\n\nfinal\n<|im_end|>\n" "Python split semantics"

        testCase "a system turn after the first is rendered in place; with no user turn, no assistant turn keeps reasoning" <| fun () ->
            Expect.equal (render [ user "Q1"; system "Be brief."; user "Q2" ] true true)
                "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n" "system in place"
            Expect.equal (render [ system "S"; assistant "<think>r</think>A" ] true true)
                "<|im_start|>system\nS<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n" "last_query_index is the last message"

        testCase "an empty conversation or a null content is an ArgumentException" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> render [] true true |> ignore) "no messages"
            Expect.throwsT<ArgumentException> (fun () -> render [ user null ] true true |> ignore) "null content"
    ]

let private idTests =
    testSequenced <| testList "token ids" [
        testCase "Qwen3's prompts encode to hand-checked ids: <|im_start|> 151644, user 872, \\n 198, <|im_end|> 151645, assistant 77091, <think> 151667, \\n\\n 271, </think> 151668" <| fun () ->
            let t = TestData.qwen3Tokenizer.Force()
            Expect.equal (ChatTemplate.Encode(t, [| user "What is 2+2?" |], enableThinking = false))
                [| 151644; 872; 198; 3838; 374; 220; 17; 10; 17; 30; 151645; 198; 151644; 77091; 198; 151667; 271; 151668; 271 |]
                "user turn, prompt, empty think block"
            Expect.equal (ChatTemplate.Encode(t, [| system "You are a helpful assistant."; user "Hi" |]))
                [| 151644; 8948; 198; 2610; 525; 264; 10950; 17847; 13; 151645; 198; 151644; 872; 198; 13048; 151645; 198; 151644; 77091; 198 |]
                "Qwen's default system prompt, user turn, prompt"
            Expect.equal (ChatTemplate.Encode(t, [| user "Q"; ChatMessage.Assistant("A", "steps") |], addGenerationPrompt = false))
                [| 151644; 872; 198; 48; 151645; 198; 151644; 77091; 198; 151667; 198; 24080; 198; 151668; 271; 32; 151645; 198 |]
                "a finished turn with reasoning ends with <|im_end|> \\n"

        testCase "the generation prompt ends a rendered chat exactly: its ids are a prefix of the ids with the answer" <| fun () ->
            let t = TestData.qwen3Tokenizer.Force()
            let prompt = ChatTemplate.Encode(t, [| user "Name a prime." |], enableThinking = false)
            let full = t.Encode(ChatTemplate.Render([| user "Name a prime." |], enableThinking = false) + "7" + "<|im_end|>")
            Expect.equal full[.. prompt.Length - 1] prompt "the answer's ids start right after the prompt's"
            Expect.equal full[full.Length - 1] t.EndOfTurnId "and end with <|im_end|>"
    ]

[<Tests>]
let tests = testList "ChatTemplate" [ stringTests; idTests ]
