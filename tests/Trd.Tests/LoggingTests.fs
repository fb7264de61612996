/// The run's records and the small tokenizer: SmallTokenizer (a few-hundred-entry Qwen3-kind vocabulary),
/// MetricsLog (JSON Lines), TensorBoardLog (event files, read back with a TFRecord reader and a protobuf parser
/// written here from the formats, not TorchSharp's), RunManifest and progress.
module Trd.Tests.LoggingTests

open System
open System.Collections.Generic
open System.IO
open System.Numerics
open System.Text
open System.Text.Json
open Expecto
open Trd.Runtime.Logging
open Trd.Runtime.Tokenization

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A clock the test moves: wall time and monotonic timestamp (in ticks) advance together.
type private ManualClock(start: DateTimeOffset) =
    inherit TimeProvider()
    let mutable now = start
    let mutable ticks = 0L
    member _.Advance(by: TimeSpan) =
        now <- now + by
        ticks <- ticks + by.Ticks
    override _.GetUtcNow() = now
    override _.GetTimestamp() = ticks
    override _.TimestampFrequency = TimeSpan.TicksPerSecond

let private epoch = DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)

let private withTempDir (f: string -> unit) =
    let dir = Directory.CreateTempSubdirectory "trd-logging-"
    try f dir.FullName finally dir.Delete true

let private values (pairs: (string * float) list) : IReadOnlyDictionary<string, float> =
    let d = Dictionary<string, float>()
    for k, v in pairs do d[k] <- v
    d :> IReadOnlyDictionary<string, float>

let private raises<'e when 'e :> exn> (f: unit -> unit) : 'e =
    try
        f ()
        failtest $"expected {typeof<'e>.Name}"
    with :? 'e as e -> e

// ---------------------------------------------------------------------------------------------
// Small tokenizer
// ---------------------------------------------------------------------------------------------

let private small = lazy (SmallTokenizer.Create())

let private tokenizerTests =
    testList "small tokenizer" [
        testCase "the vocabulary is the 256 bytes at their own ids, the merges, then Qwen3's 26 added tokens: under 600 ids" <| fun () ->
            let t = small.Force()
            Expect.isLessThan t.VocabularySize 600 "a few hundred ids"
            Expect.equal t.VocabularySize 404 "256 bytes + 122 merges + 26 added tokens (pinned: a tiny model's vocab_size must cover it)"
            Expect.equal (t.Encode "7") [| int '7' |] "byte b is id b"
            Expect.equal (t.Encode "\u00e9") [| 0xC3; 0xA9 |] "é is its two UTF-8 bytes"
            Expect.equal t.AddedTokens.Count 26 "Qwen3's added tokens"
            Expect.equal (t.AddedTokens |> Seq.map (fun a -> a.Id) |> List.ofSeq) [ t.VocabularySize - 26 .. t.VocabularySize - 1 ] "at the end, in order"
            Expect.equal (t.EndOfTextId, t.EndOfTurnId) (t.VocabularySize - 26, t.VocabularySize - 24) "<|endoftext|> first, <|im_end|> third, as in Qwen3"
            Expect.equal (t.TryGetId "<think>" |> fst, t.TryGetId "</think>" |> fst) (true, true) "think tags"

        testCase "each of the 16 epistemic phrases, bare and after a space, is one token (App. C.5's two variants)" <| fun () ->
            let t = small.Force()
            Expect.equal SmallTokenizer.EpistemicPhrases.Count 16 "the paper's 16 phrases"
            let ids =
                [ for p in SmallTokenizer.EpistemicPhrases do
                      for v in [ p; " " + p ] do
                          let ids = t.Encode v
                          Expect.equal ids.Length 1 $"'{v}' is one token"
                          Expect.equal (t.Decode ids) v $"'{v}' decodes back"
                          ids[0] ]
            Expect.equal (List.distinct ids).Length 32 "32 distinct ids: the set ℰ"

        testCase "every default word is one token, and keeps it in running text" <| fun () ->
            let t = small.Force()
            for w in SmallTokenizer.DefaultWords do
                Expect.equal (t.Encode w).Length 1 $"'{w}' is one token"
            let text = "So 2 + 3 = 5. Wait, let me check.\n\nAnswer: \\boxed{5}"
            let ids = t.Encode text
            for w in [ "So"; " ="; " Wait"; "\n\n"; "Answer"; " \\"; "boxed" ] do
                Expect.contains ids (t.Encode w).[0] $"'{w}' is one token inside the text"
            Expect.equal (t.Decode ids) text "round trip"

        testCase "ASCII text round-trips: decode(encode s) = s" <| fun () ->
            let t = small.Force()
            for s in [ ""; " "; "hello world"; "  two  spaces \t tab\r\nCRLF"; "x = (a+b)/2; y != z?"; "I'm sure it's 42, isn't it?"
                       "Hmm... Actually, the answer is \\frac{1}{2}."; String(Array.init 128 char) ] do
                Expect.equal (t.Decode(t.Encode s)) s $"round trip of {JsonSerializer.Serialize s}"

        testProperty "any text round-trips to its NFC form: decode(encode s) = NFC(s), lone surrogates as U+FFFD" <| fun (s: string) ->
            let t = small.Force()
            let s = if isNull s then "" else s
            // Random strings never spell an added token, so the whole string is one stretch: NFC of all of it.
            let expected = NfcNormalizer.Instance.Normalize s
            t.Decode(t.Encode s) = expected && t.Decode(t.Encode expected) = expected

        testCase "the chat template's special tokens are single ids" <| fun () ->
            let t = small.Force()
            let messages = [| ChatMessage.System "Be brief."; ChatMessage.User "What is 2+3?" |]
            let ids = ChatTemplate.Encode(t, messages, addGenerationPrompt = true, enableThinking = false)
            let idOf token = match t.TryGetId token with | true, id -> id | _ -> failtest $"no id for {token}"
            let count token = ids |> Array.filter ((=) (idOf token)) |> Array.length
            Expect.equal (count "<|im_start|>") 3 "system, user, assistant"
            Expect.equal (count "<|im_end|>") 2 "system, user"
            Expect.equal (count "<think>", count "</think>") (1, 1) "the empty think block"
            Expect.equal ids[0] (idOf "<|im_start|>") "starts with <|im_start|>"
            Expect.equal (t.Decode ids) (ChatTemplate.Render(messages, true, false)) "decodes to the rendered prompt"
            Expect.equal (t.Decode(ids, skipSpecialTokens = true)) "system\nBe brief.\nuser\nWhat is 2+3?\nassistant\n<think>\n\n</think>\n\n" "special ones skipped, think tags kept"

        testCase "extra words become one token each, also when they share or repeat pieces" <| fun () ->
            let words = [ "Paris"; " Paris"; "abab"; "ab"; "aaaa"; " aaaa"; "Waiting"; " Wai"; "ababab" ]
            let t = SmallTokenizer.Create words
            for w in words @ List.ofSeq SmallTokenizer.DefaultWords do
                Expect.equal (t.Encode w).Length 1 $"'{w}' is one token"

        testProperty "random letter words all become one token each" <| fun (raw: string list) ->
            let words =
                raw
                |> List.map (fun w -> if isNull w then "" else String(w.ToCharArray() |> Array.map (fun c -> "abW".[int c % 3])))
                |> List.filter (fun w -> w.Length > 0)
                |> List.truncate 12
                |> List.collect (fun w -> [ w; " " + w ])
            let t = SmallTokenizer.Create words
            words |> List.forall (fun w -> (t.Encode w).Length = 1)

        testCase "a word that is not one split piece, not NFC, or holds an added token is an ArgumentException naming it" <| fun () ->
            for bad in [ "Wait,"; "two words"; "e\u0301"; "a<think>"; "" ] do
                let e = raises<ArgumentException> (fun () -> SmallTokenizer.Create [ bad ] |> ignore)
                Expect.equal e.ParamName "extraWords" $"{JsonSerializer.Serialize bad}"

        testCase "Write puts a tokenizer.json that FromDirectory loads; the same words give the same bytes" <| fun () ->
            withTempDir (fun dir ->
                SmallTokenizer.Write(dir, [ "Paris" ])
                Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "tokenizer.json" |] "one file, no temporary left"
                let t = Qwen3Tokenizer.FromDirectory dir
                Expect.equal (t.Encode "Paris").Length 1 "the extra word"
                Expect.equal (File.ReadAllBytes(Path.Combine(dir, "tokenizer.json"))) (SmallTokenizer.ToJson [ "Paris" ]) "deterministic")
    ]

// ---------------------------------------------------------------------------------------------
// Metrics log
// ---------------------------------------------------------------------------------------------

let private metricsTests =
    testList "metrics log" [
        testCase "each Write is one line, readable while the log is open; NaN and infinities are null with the key kept" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "metrics.jsonl")
                let clock = ManualClock epoch
                use log = new MetricsLog(path, clock)
                log.Write(1L, values [ "loss", 0.5; "kl", nan ])
                clock.Advance(TimeSpan.FromMilliseconds 1500.0)
                log.Write(2L, values [ "loss", 0.25; "kl", infinity; "gap", -infinity ])
                let lines = File.ReadAllLines path
                Expect.equal lines.Length 2 "two lines"
                Expect.equal lines[0] $"""{{"step":1,"wall_time":{epoch.ToUnixTimeSeconds()},"loss":0.5,"kl":null}}""" "the first line"
                let read = MetricsLog.Read path
                Expect.isFalse read.TornFinalLine "nothing torn"
                let r = read.Records
                Expect.equal (r |> Seq.map (fun x -> x.Step) |> List.ofSeq) [ Nullable 1L; Nullable 2L ] "steps"
                Expect.equal r[1].WallTime (Nullable(float (epoch.ToUnixTimeSeconds()) + 1.5)) "wall time from the clock"
                Expect.equal r[1].Values["loss"] (Nullable 0.25) "a value"
                Expect.equal (List.ofSeq r[1].Values.Keys) [ "loss"; "kl"; "gap" ] "keys kept, in order"
                Expect.isFalse r[1].Values["kl"].HasValue "infinity is null"
                Expect.isFalse r[0].Values["kl"].HasValue "NaN is null")

        testProperty "every finite double reads back exactly" <| fun (x: float) ->
            let x = if Double.IsFinite x then x else 0.0
            let dir = Directory.CreateTempSubdirectory "trd-logging-"
            try
                let path = Path.Combine(dir.FullName, "m.jsonl")
                let xs = [ "x", x; "subnormal", x * 1e-300; "next", Math.BitIncrement x ] |> List.filter (snd >> Double.IsFinite)
                do
                    use log = new MetricsLog(path)
                    log.Write(0L, values xs)
                let v = (MetricsLog.Read path).Records[0].Values
                xs |> List.forall (fun (k, x) -> v[k] = Nullable x)
            finally dir.Delete true

        testCase "a second log on the same file appends after the first" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "sub", "metrics.jsonl")
                do
                    use log = new MetricsLog(path)
                    log.Write(1L, values [ "a", 1.0 ])
                do
                    use log = new MetricsLog(path)
                    log.Write(2L, values [ "a", 2.0 ])
                let r = (MetricsLog.Read path).Records
                Expect.equal (r |> Seq.map (fun x -> x.Values["a"].Value) |> List.ofSeq) [ 1.0; 2.0 ] "both, in order")

        testCase "a torn last line is left unread and reported, the file untouched; the next log cuts it away" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "metrics.jsonl")
                do
                    use log = new MetricsLog(path)
                    log.Write(1L, values [ "a", 1.0 ])
                File.AppendAllText(path, """{"step":2,"wall_time":17""")
                let before = File.ReadAllBytes path
                let torn = MetricsLog.Read path
                Expect.equal torn.Records.Count 1 "the whole record"
                Expect.isTrue torn.TornFinalLine "the torn line is reported"
                Expect.equal (File.ReadAllBytes path) before "reading modified nothing"
                do
                    use log = new MetricsLog(path)
                    log.Write(3L, values [ "a", 3.0 ])
                let after = MetricsLog.Read path
                Expect.equal (after.Records |> Seq.map (fun x -> x.Step.Value) |> List.ofSeq) [ 1L; 3L ] "the new record is whole"
                Expect.isFalse after.TornFinalLine "the writer cut the torn line away"
                Expect.equal (File.ReadAllLines path).Length 2 "two lines, no fragment kept")

        testCase "an unterminated last line that is a whole object (another tool's file) is read, and the next log keeps it" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "metrics.jsonl")
                File.WriteAllText(path, "{\"step\":1,\"a\":1}\n\n{\"step\":2,\"a\":2}")
                let read = MetricsLog.Read path
                Expect.equal (read.Records |> Seq.map (fun x -> x.Step.Value) |> List.ofSeq) [ 1L; 2L ] "both records, the empty line ignored"
                Expect.isFalse read.TornFinalLine "nothing torn"
                do
                    use log = new MetricsLog(path)
                    log.Write(3L, values [ "a", 3.0 ])
                Expect.equal ((MetricsLog.Read path).Records |> Seq.map (fun x -> x.Step.Value) |> List.ofSeq) [ 1L; 2L; 3L ] "the whole last line kept")

        testCase "a bad line before the last is an error naming the file and line" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "metrics.jsonl")
                File.WriteAllText(path, "{\"step\":1}\n{\"step\":2,\n{\"step\":3}\n")
                let message = Generators.throwsMessage<Trd.Runtime.Data.CorpusException> (fun () -> MetricsLog.Read path |> ignore)
                Expect.stringContains message $"{path}, line 2" "file and line named")

        testCase "any record serialises as one object line, its non-finite floats as null" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "metrics.jsonl")
                do
                    use log = new MetricsLog(path)
                    log.Write {| phase = "eval"; accuracy = nan; n = 3; score = float32 infinity |}
                let r = (MetricsLog.Read path).Records[0]
                Expect.equal (r.Json.GetProperty("phase").GetString()) "eval" "a string field"
                Expect.isFalse r.Step.HasValue "no step"
                Expect.equal r.Values["n"] (Nullable 3.0) "a number"
                Expect.isFalse r.Values["accuracy"].HasValue "NaN as null"
                Expect.isFalse r.Values["score"].HasValue "float32 infinity as null")

        testCase "a value named step, a non-object record, or a write after Dispose is an error" <| fun () ->
            withTempDir (fun dir ->
                let log = new MetricsLog(Path.Combine(dir, "m.jsonl"))
                raises<ArgumentException> (fun () -> log.Write(1L, values [ "step", 1.0 ])) |> ignore
                raises<ArgumentException> (fun () -> log.Write(box [| 1; 2 |])) |> ignore
                log.Dispose()
                raises<ObjectDisposedException> (fun () -> log.Write(1L, values [ "a", 1.0 ])) |> ignore)
    ]

// ---------------------------------------------------------------------------------------------
// TensorBoard: TFRecord framing and the Event protobuf, read independently of TorchSharp
// ---------------------------------------------------------------------------------------------

/// CRC-32C (Castagnoli), with the standard initial and final inversion.
let private crc32c (data: ReadOnlySpan<byte>) =
    let mutable crc = 0xFFFFFFFFu
    for i in 0 .. data.Length - 1 do crc <- BitOperations.Crc32C(crc, data[i])
    ~~~crc

/// TensorFlow's masked CRC: rotate right by 15 and add a constant (so a CRC of CRCs is not degenerate).
let private maskedCrc (data: ReadOnlySpan<byte>) =
    let c = crc32c data
    ((c >>> 15) ||| (c <<< 17)) + 0xa282ead8u

/// TFRecord: uint64 length, uint32 masked CRC of the length's 8 bytes, data, uint32 masked CRC of the data; all
/// little-endian. Fails on a bad CRC or a truncated record.
let private readTfRecords (bytes: byte[]) =
    let records = ResizeArray<byte[]>()
    let mutable at = 0
    while at < bytes.Length do
        if bytes.Length - at < 12 then failtest $"truncated header at {at}"
        let length = BitConverter.ToUInt64(bytes, at)
        Expect.equal (BitConverter.ToUInt32(bytes, at + 8)) (maskedCrc (ReadOnlySpan(bytes, at, 8))) $"length CRC at {at}"
        let start = at + 12
        if uint64 (bytes.Length - start) < length + 4UL then failtest $"truncated record at {at}"
        let data = bytes[start .. start + int length - 1]
        Expect.equal (BitConverter.ToUInt32(bytes, start + int length)) (maskedCrc (ReadOnlySpan data)) $"data CRC at {at}"
        records.Add data
        at <- start + int length + 4
    List.ofSeq records

/// Protobuf wire format, just enough: (field number, value) where a value is a varint, fixed64, fixed32 or bytes.
type private Wire =
    | Varint of uint64
    | Fixed64 of uint64
    | Fixed32 of uint32
    | Bytes of byte[]

let private parseWire (data: byte[]) =
    let mutable at = 0
    let varint () =
        let mutable result = 0UL
        let mutable shift = 0
        let mutable go = true
        while go do
            let b = data[at]
            at <- at + 1
            result <- result ||| (uint64 (b &&& 0x7Fuy) <<< shift)
            shift <- shift + 7
            go <- b &&& 0x80uy <> 0uy
        result
    [ while at < data.Length do
          let key = varint ()
          let field = int (key >>> 3)
          match int (key &&& 7UL) with
          | 0 -> yield field, Varint(varint ())
          | 1 ->
              yield field, Fixed64(BitConverter.ToUInt64(data, at))
              at <- at + 8
          | 2 ->
              let n = int (varint ())
              yield field, Bytes data[at .. at + n - 1]
              at <- at + n
          | 5 ->
              yield field, Fixed32(BitConverter.ToUInt32(data, at))
              at <- at + 4
          | w -> failtest $"wire type {w}" ]

/// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5;
/// Summary.value = 1 (repeated); Summary.Value: tag = 1 (string), simple_value = 2 (float).
type private ParsedEvent = { WallTime: float; Step: int64; FileVersion: string; Scalars: (string * float32) list }

let private parseEvent (data: byte[]) =
    let mutable e = { WallTime = 0.0; Step = 0L; FileVersion = ""; Scalars = [] }
    for field, value in parseWire data do
        match field, value with
        | 1, Fixed64 bits -> e <- { e with WallTime = BitConverter.UInt64BitsToDouble bits }
        | 2, Varint v -> e <- { e with Step = int64 v }
        | 3, Bytes b -> e <- { e with FileVersion = Encoding.UTF8.GetString b }
        | 5, Bytes summary ->
            for sField, sValue in parseWire summary do
                match sField, sValue with
                | 1, Bytes v ->
                    let fields = parseWire v
                    let tag = fields |> List.pick (function 1, Bytes t -> Some(Encoding.UTF8.GetString t) | _ -> None)
                    let x = fields |> List.pick (function 2, Fixed32 f -> Some(BitConverter.UInt32BitsToSingle f) | _ -> None)
                    e <- { e with Scalars = e.Scalars @ [ tag, x ] }
                | _ -> ()
        | _ -> ()
    e

let private tensorBoardTests =
    testList "TensorBoard" [
        testCase "the test's CRC-32C gives the standard check value, crc32c(\"123456789\") = 0xE3069283" <| fun () ->
            Expect.equal (crc32c (ReadOnlySpan(Encoding.ASCII.GetBytes "123456789"))) 0xE3069283u "check value"

        testCase "scalars go to one event file whose TFRecord CRCs check and whose events carry the tags, steps, values and wall times" <| fun () ->
            withTempDir (fun dir ->
                let clock = ManualClock epoch
                let logDir = Path.Combine(dir, "tb")
                do
                    use log = new TensorBoardLog(logDir, clock)
                    log.Scalars(1L, values [ "loss", 0.5; "kl/forward", 0.25 ])
                    clock.Advance(TimeSpan.FromSeconds 3.0)
                    log.Scalars(2L, values [ "loss", 0.125; "nan", nan ])
                    log.Scalar("lr", 3L, 1e-5)
                let files = Directory.GetFiles(logDir, "events.out.tfevents.*", SearchOption.AllDirectories)
                Expect.equal files.Length 1 "one event file, directly in the log directory"
                Expect.equal (Path.GetDirectoryName files[0]) logDir "not nested"
                let events = readTfRecords (File.ReadAllBytes files[0]) |> List.map parseEvent
                Expect.equal events.Head.FileVersion "brain.Event:2" "the first event names the format"
                let scalars = events.Tail |> List.collect (fun e -> e.Scalars |> List.map (fun (tag, v) -> e.Step, tag, v))
                Expect.equal (scalars |> List.filter (fun (_, tag, _) -> tag <> "nan"))
                    [ 1L, "loss", 0.5f; 1L, "kl/forward", 0.25f; 2L, "loss", 0.125f; 3L, "lr", float32 1e-5 ] "one event per scalar, float32"
                Expect.isTrue (scalars |> List.exists (fun (s, tag, v) -> s = 2L && tag = "nan" && Single.IsNaN v)) "NaN kept"
                let t0 = float (epoch.ToUnixTimeSeconds())
                Expect.equal (events.Tail |> List.map (fun e -> e.WallTime)) [ t0; t0; t0 + 3.0; t0 + 3.0; t0 + 3.0 ] "wall times from the clock"
                // The same bytes through TorchSharp's own generated Event type, on our pinned Google.Protobuf.
                let viaProtobuf = Tensorboard.Event.Parser.ParseFrom(readTfRecords (File.ReadAllBytes files[0]) |> List.item 1)
                Expect.equal (viaProtobuf.Summary.Value[0].Tag, viaProtobuf.Summary.Value[0].SimpleValue) ("loss", 0.5f) "Google.Protobuf agrees")

        testCase "a step beyond int32, or a write after Dispose, is an error" <| fun () ->
            withTempDir (fun dir ->
                let log = new TensorBoardLog(dir)
                raises<ArgumentOutOfRangeException> (fun () -> log.Scalar("x", int64 Int32.MaxValue + 1L, 1.0)) |> ignore
                log.Dispose()
                raises<ObjectDisposedException> (fun () -> log.Scalar("x", 1L, 1.0)) |> ignore)
    ]

// ---------------------------------------------------------------------------------------------
// Run manifest
// ---------------------------------------------------------------------------------------------

type ToyConfig = { Model: string; LearningRate: float; Steps: int; Tags: string list }

let private gitAvailable =
    lazy
        (try
            let code, _, _ = TestData.runProcess "git" [ "--version" ] Environment.CurrentDirectory (TimeSpan.FromSeconds 30.0)
            code = 0
         with _ -> false)

let private git (dir: string) (args: string list) =
    let code, stdout, stderr =
        TestData.runProcess "git" ([ "-c"; "user.name=Trd Tests"; "-c"; "user.email=tests@trd.invalid"; "-c"; "commit.gpgsign=false" ] @ args) dir (TimeSpan.FromSeconds 60.0)
    if code <> 0 then failtest $"git {String.Join(' ', args)} failed: {stderr}"
    stdout.Trim()

let private manifestTests =
    testList "run manifest" [
        testCase "a written manifest reads back equal, the configuration whole; outside a git tree the commit is null" <| fun () ->
            withTempDir (fun dir ->
                let config = { Model = "tiny"; LearningRate = 1e-4; Steps = 20; Tags = [ "a"; "b" ] }
                let clock = ManualClock epoch
                let m = RunManifest.Capture("trd train --config tiny.json", config, 1234L, workingDirectory = dir, time = clock)
                Expect.equal m.StartedAt epoch "start time from the clock"
                Expect.equal m.Config.ValueKind JsonValueKind.Object "config as a JSON object"
                Expect.equal (m.Config.GetProperty("LearningRate").GetDouble()) 1e-4 "config field"
                Expect.equal (m.GitCommit, m.GitDirty) (null, Nullable()) "no git tree in a temporary directory"
                Expect.isNull m.Device "no device"
                Expect.equal (List.ofSeq m.Versions.Keys) [ "TorchSharp"; "Trd.Core"; "Trd.Runtime" ] "versions without libtorch"
                Expect.isGreaterThan m.ProcessorCount 0 "processors"
                let path = m.Write(Path.Combine(dir, "run"))
                Expect.equal path (Path.Combine(dir, "run", "manifest.json")) "manifest.json in the run directory"
                Expect.equal (Directory.GetFiles(Path.Combine(dir, "run")) |> Array.map Path.GetFileName) [| "manifest.json" |] "no temporary left"
                use json = JsonDocument.Parse(File.ReadAllText path)
                Expect.equal (json.RootElement.GetProperty("seed").GetInt64()) 1234L "snake_case keys"
                Expect.isTrue (json.RootElement.TryGetProperty("git_commit") |> fst) "git_commit present, as null"
                let back = RunManifest.Read(Path.Combine(dir, "run"))
                Expect.equal back m "equal, field by field"
                Expect.equal (JsonSerializer.Serialize back.Config) (JsonSerializer.Serialize m.Config) "config, whole"
                let again seed (config: ToyConfig) = RunManifest.Capture("trd train --config tiny.json", config, seed, workingDirectory = dir, time = clock)
                Expect.equal (again 1234L config) m "the same capture is equal"
                Expect.notEqual (again 1L config) m "equality sees the seed"
                Expect.notEqual (again 1234L { config with Steps = 21 }) m "and the config")

        testCase "a missing git executable or a missing directory gives (null, null), not an exception" <| fun () ->
            Expect.equal (GitWorkingTree.Read(TestData.repositoryRoot, "/nonexistent/git")) (struct (null, Nullable())) "no git"
            Expect.equal (GitWorkingTree.Read(Path.Combine(Path.GetTempPath(), $"trd-none-{Guid.NewGuid():N}"))) (struct (null, Nullable())) "no directory"

        testCase "in a git working tree the commit is HEAD's, and a change marks it dirty" <| fun () ->
            if not (gitAvailable.Force()) then skiptest "git is not installed"
            withTempDir (fun dir ->
                git dir [ "init"; "-q" ] |> ignore
                File.WriteAllText(Path.Combine(dir, "a.txt"), "one")
                git dir [ "add"; "a.txt" ] |> ignore
                git dir [ "commit"; "-q"; "-m"; "first" ] |> ignore
                let head = git dir [ "rev-parse"; "HEAD" ]
                let sub = Directory.CreateDirectory(Path.Combine(dir, "sub")).FullName
                Expect.equal (GitWorkingTree.Read sub) (struct (head, Nullable false)) "clean, found from a subdirectory"
                File.WriteAllText(Path.Combine(dir, "a.txt"), "two")
                let m = RunManifest.Capture("cmd", JsonDocument.Parse("{}").RootElement, 0L, workingDirectory = dir)
                Expect.equal (m.GitCommit, m.GitDirty) (head, Nullable true) "a tracked change is dirty")

        testCase "with a device, the device and libtorch's version are recorded" <| fun () ->
            withTempDir (fun dir ->
                let m = RunManifest.Capture("cmd", JsonDocument.Parse("""{"a":1}""").RootElement, 7L, TorchSharp.torch.CPU, dir)
                Expect.equal m.Device "cpu" "device"
                Expect.equal m.Versions["libtorch"] TorchSharp.torch.__version__ "libtorch")
    ]

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

type private RecordingSink() =
    let updates = ResizeArray<ProgressUpdate>()
    member _.Updates = List.ofSeq updates
    interface IProgressSink with
        member _.Report u = lock updates (fun () -> updates.Add u)

let private progressTests =
    testList "progress" [
        testCase "tokens per second and the ETA are averages since the start, on the tracker's clock" <| fun () ->
            let clock = ManualClock epoch
            let sink = RecordingSink()
            let tracker = ProgressTracker("generate", 10L, sink, clock)
            Expect.equal tracker.Current (ProgressUpdate("generate", 0L, 10L, 0.0, Nullable())) "nothing done: no rate, no ETA"
            clock.Advance(TimeSpan.FromSeconds 2.0)
            let u = tracker.Advance(2L, 400L)
            Expect.equal u (ProgressUpdate("generate", 2L, 10L, 200.0, Nullable(TimeSpan.FromSeconds 8.0))) "2 of 10 in 2 s: 8 s to go"
            clock.Advance(TimeSpan.FromSeconds 6.0)
            let u = tracker.Advance(8L, 1200L)
            Expect.equal u (ProgressUpdate("generate", 10L, 10L, 200.0, Nullable TimeSpan.Zero)) "done"
            Expect.isTrue u.IsComplete "complete"
            Expect.equal sink.Updates.Length 2 "each Advance reported"

        testCase "an unknown total gives no ETA and is never complete" <| fun () ->
            let clock = ManualClock epoch
            let tracker = ProgressTracker("score", 0L, time = clock)
            clock.Advance(TimeSpan.FromSeconds 1.0)
            let u = tracker.Advance(5L, 50L)
            Expect.equal (u.Eta, u.IsComplete, u.TokensPerSecond) (Nullable(), false, 50.0) "no ETA"

        testCase "the console sink writes a stage's first line, then at most one per interval per stage, and always the last" <| fun () ->
            let clock = ManualClock epoch
            let out = new StringWriter()
            let sink = ConsoleProgressSink(out, TimeSpan.FromSeconds 0.5, clock)
            let at (seconds: float) stage fraction =
                clock.Advance(TimeSpan.FromSeconds seconds)
                (sink :> IProgressSink).Report(ProgressUpdate(stage, fraction, 4L, 10.0, Nullable(TimeSpan.FromSeconds 90.0)))
            at 0.0 "a" 1L // first: written
            at 0.1 "a" 2L // throttled
            at 0.5 "a" 3L // 0.6 s since the last line: written
            at 0.1 "a" 4L // complete: written
            at 0.0 "b" 1L // b's first: written
            at 0.1 "a" 1L // a again, 0.1 s after its last line: throttled
            at 0.5 "b" 2L // b, 0.6 s after its last line: written
            let lines = out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.equal lines [| "[a] 1/4 (25.0%)  10.0 tok/s  ETA 00:01:30"; "[a] 3/4 (75.0%)  10.0 tok/s  ETA 00:01:30"
                                  "[a] 4/4 (100.0%)  10.0 tok/s  ETA 00:01:30"; "[b] 1/4 (25.0%)  10.0 tok/s  ETA 00:01:30"
                                  "[b] 2/4 (50.0%)  10.0 tok/s  ETA 00:01:30" |] "lines"

        testCase "the line leaves out what is unknown" <| fun () ->
            Expect.equal (ConsoleProgressSink.Format(ProgressUpdate("train", 7L, 0L, 0.0, Nullable()))) "[train] 7" "count only"
            Expect.equal (ConsoleProgressSink.Format(ProgressUpdate("train", 1L, 2L, 0.0, Nullable(TimeSpan.FromHours 150.0)))) "[train] 1/2 (50.0%)  ETA 150h" "long ETA"
    ]

[<Tests>]
let tests = testList "Logging" [ tokenizerTests; metricsTests; tensorBoardTests; manifestTests; progressTests ]
