/// The safetensors reader and writer: bit-identical round trips, a deterministic writer, files written by hand
/// (as another implementation would), and broken or hostile files, each a CheckpointException naming the file and
/// tensor — including random byte mutations and truncations of a valid file.
module Trd.Tests.SafeTensorsTests

open System
open System.Buffers.Binary
open System.Collections.Generic
open System.IO
open System.Text
open System.Threading.Tasks
open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open Trd.Runtime.Checkpoints
open Trd.Tests.CheckpointHelpers

type private ST = torch.ScalarType

let private tensors (pairs: (string * torch.Tensor) list) = Dictionary<string, torch.Tensor>(dict pairs)

/// Saves, reopens and checks every tensor's name, dtype, shape and bytes; returns the reopened file.
let private roundTrip (dir: string) (original: Dictionary<string, torch.Tensor>) =
    let path = Path.Combine(dir, "model.safetensors")
    SafeTensors.Save(path, original)
    let file = SafeTensors.Open path
    Expect.sequenceEqual file.Names (original.Keys |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))) "names, in ordinal order"
    let loaded = file.LoadAll()
    try
        for KeyValue(name, t) in original do
            let l = loaded[name]
            Expect.equal l.dtype t.dtype $"{name}: dtype"
            Expect.sequenceEqual l.shape t.shape $"{name}: shape"
            Expect.isTrue ((rawBytes l) = (rawBytes t)) $"{name}: bytes identical"
    finally disposeAll loaded
    file

let private roundTripTests =
    testList "round trip" [
        testCase "F32, BF16 and F16 tensors of random bits (NaN payloads, ±inf, subnormals, −0) reload bit-identically" <| fun () ->
            withTempDir (fun dir ->
                let rng = Random 1
                let original =
                    tensors [ "model.embed_tokens.weight", randomTensor rng ST.BFloat16 [| 64L; 32L |]
                              "model.layers.0.self_attn.q_proj.weight", randomTensor rng ST.Float32 [| 32L; 32L |]
                              "model.norm.weight", randomTensor rng ST.Float16 [| 32L |] ]
                roundTrip dir original |> ignore
                disposeAll original)
        testCase "every loadable dtype (F64, I64, I32, I16, I8, U8, BOOL too), scalars and empty tensors reload bit-identically" <| fun () ->
            withTempDir (fun dir ->
                let rng = Random 2
                let original =
                    tensors [ for dtype in [ ST.Float64; ST.Float32; ST.Float16; ST.BFloat16; ST.Int64; ST.Int32; ST.Int16; ST.Int8; ST.Byte; ST.Bool ] do
                                  $"t.{dtype}", randomTensor rng dtype [| 3L; 5L |]
                              "scalar", randomTensor rng ST.Float32 [||]
                              "empty", randomTensor rng ST.BFloat16 [| 0L; 7L |]
                              "empty.too", randomTensor rng ST.Float32 [| 4L; 0L |] ]
                let file = roundTrip dir original
                Expect.equal (file.Entry("scalar")).Shape.Count 0 "a scalar has shape []"
                Expect.equal (file.Entry("empty")).ByteCount 0L "an empty tensor takes no bytes"
                disposeAll original)
        testCase "a non-contiguous tensor is written as its values in row-major order" <| fun () ->
            withTempDir (fun dir ->
                use x = torch.tensor([| 0.0f .. 11.0f |]).reshape(3L, 4L)
                use transposed = x.t()
                Expect.isFalse (transposed.is_contiguous()) "the input is a strided view"
                let path = Path.Combine(dir, "t.safetensors")
                SafeTensors.Save(path, readOnlyDict [ "t", transposed ])
                use loaded = (SafeTensors.Open path).Load("t")
                Expect.sequenceEqual loaded.shape [| 4L; 3L |] "shape"
                Expect.sequenceEqual (loaded.data<float32>().ToArray()) [| 0.0f; 4.0f; 8.0f; 1.0f; 5.0f; 9.0f; 2.0f; 6.0f; 10.0f; 3.0f; 7.0f; 11.0f |] "values")
        testCase "writing the same tensors twice gives byte-identical files (deterministic writer)" <| fun () ->
            withTempDir (fun dir ->
                let rng = Random 3
                let original = tensors [ for i in 0 .. 9 -> $"w{(i * 7) % 10}", randomTensor rng ST.BFloat16 [| int64 i + 1L; 3L |] ]
                let a, b = Path.Combine(dir, "a.safetensors"), Path.Combine(dir, "b.safetensors")
                SafeTensors.Save(a, original, readOnlyDict [ "note", "x" ])
                // The same tensors in another insertion order.
                SafeTensors.Save(b, Dictionary<string, torch.Tensor>(original |> Seq.rev), readOnlyDict [ "note", "x" ])
                Expect.isTrue (File.ReadAllBytes a = File.ReadAllBytes b) "identical files"
                disposeAll original)
        testCase "the header is HF's: 8-byte aligned with space padding, __metadata__ first with format pt, data in name order" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "m.safetensors")
                use a = torch.ones(3L, dtype = torch.float32)
                use b = torch.zeros(1L, dtype = torch.float16)
                SafeTensors.Save(path, readOnlyDict [ "b", b; "a", a ], readOnlyDict [ "origin", "trd" ])
                let bytes = File.ReadAllBytes path
                let n = BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(bytes, 0, 8)) |> int
                Expect.equal (n % 8) 0 "header length is a multiple of 8"
                let header = Encoding.UTF8.GetString(bytes, 8, n)
                Expect.equal (header.TrimEnd(' ')) """{"__metadata__":{"format":"pt","origin":"trd"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F16","shape":[1],"data_offsets":[12,14]}}""" "header text"
                Expect.equal bytes.Length (8 + n + 14) "file length"
                let file = SafeTensors.Open path
                Expect.equal file.Metadata["origin"] "trd" "metadata read back")
        testCase "an unsupported dtype (complex) is refused by the writer before any file is made" <| fun () ->
            withTempDir (fun dir ->
                use c = torch.zeros(2L, dtype = torch.complex64)
                let path = Path.Combine(dir, "c.safetensors")
                Expect.throwsT<ArgumentException> (fun () -> SafeTensors.Save(path, readOnlyDict [ "c", c ])) "complex is refused"
                Expect.isEmpty (Directory.GetFiles dir) "no file, not even a temporary one")
        testCase "loading with a dtype and device converts (BF16 file → float32), values exact" <| fun () ->
            withTempDir (fun dir ->
                use x = torch.tensor([| 1.0f; -2.5f; 3.140625f |]).to_type(torch.bfloat16)
                let path = Path.Combine(dir, "x.safetensors")
                SafeTensors.Save(path, readOnlyDict [ "x", x ])
                use y = (SafeTensors.Open path).Load("x", torch.CPU, Nullable torch.float32)
                Expect.equal y.dtype torch.float32 "dtype"
                Expect.sequenceEqual (y.data<float32>().ToArray()) [| 1.0f; -2.5f; 3.140625f |] "values")
    ]

/// A header as another writer might produce it: keys not sorted, data not in name order, no padding, a scalar.
let private handWritten () =
    let f32 = Array.concat [ for x in [ 1.0f; 2.0f; -3.5f ] -> BitConverter.GetBytes x ]     // 12 bytes
    let bf16 = [| 0x80uy; 0x3Fuy; 0x00uy; 0xC0uy |]                                         // 1.0, −2.0 (little-endian)
    let f16 = [| 0x00uy; 0x3Cuy |]                                                          // 1.0
    let header =
        """{"z.f16":{"dtype":"F16","shape":[],"data_offsets":[16,18]},"a.f32":{"data_offsets":[4,16],"shape":[3],"dtype":"F32"},"__metadata__":{"k":"v"},"m.bf16":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]}}"""
    rawFile header (Array.concat [ bf16; f32; f16 ])

let private handWrittenTests =
    testList "files written by hand" [
        testCase "a file built from raw bytes (unsorted keys, data out of name order, no padding) loads with the right values" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "hand.safetensors" (handWritten ())
                let file = SafeTensors.Open path
                Expect.sequenceEqual file.Names [ "a.f32"; "m.bf16"; "z.f16" ] "names"
                Expect.sequenceEqual (file.Entries |> Seq.map (fun e -> e.Name)) [ "m.bf16"; "a.f32"; "z.f16" ] "entries in file order"
                Expect.equal file.Metadata["k"] "v" "metadata"
                let all = file.LoadAll()
                try
                    Expect.sequenceEqual (all["a.f32"].data<float32>().ToArray()) [| 1.0f; 2.0f; -3.5f |] "F32 values"
                    Expect.equal all["m.bf16"].dtype torch.bfloat16 "BF16 dtype"
                    Expect.sequenceEqual all["m.bf16"].shape [| 2L; 1L |] "BF16 shape"
                    Expect.sequenceEqual (all["m.bf16"].to_type(torch.float32).data<float32>().ToArray()) [| 1.0f; -2.0f |] "BF16 values"
                    Expect.equal all["z.f16"].dtype torch.float16 "F16 dtype"
                    Expect.equal (all["z.f16"].to_type(torch.float32).item<float32>()) 1.0f "F16 scalar"
                finally disposeAll all)
        testCase "a file whose header has no __metadata__ loads with empty metadata" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "bare.safetensors" (rawFile """{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""" [| 7uy; 9uy |])
                let file = SafeTensors.Open path
                Expect.isEmpty file.Metadata "no metadata"
                use x = file.Load("x")
                Expect.sequenceEqual (x.data<byte>().ToArray()) [| 7uy; 9uy |] "values")
    ]

/// Hostile headers: (what, header, data, tensor named in the error, fragment of the message).
let private hostileHeaders : (string * string * int * string option * string) list =
    let entry name dtype shape (b: int) (e: int) = $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{b},{e}]}}"
    [ "a header that is not JSON", """{"w":{"dtype":"F32",""", 4, None, "not valid JSON"
      "a header that is a JSON array, not an object", "[1,2]", 0, None, "not an object"
      "an unknown dtype", "{" + entry "w" "Q7" "[1]" 0 4 + "}", 4, Some "w", "unknown dtype 'Q7'"
      "a safetensors dtype TorchSharp lacks (U32)", "{" + entry "w" "U32" "[1]" 0 4 + "}", 4, Some "w", "has no tensor type"
      "a byte count that does not match the shape", "{" + entry "w" "F32" "[3]" 0 8 + "}", 8, Some "w", "needs 12"
      "offsets beyond the data buffer", "{" + entry "w" "F32" "[4]" 0 16 + "}", 8, Some "w", "beyond the data buffer"
      "reversed offsets", "{" + entry "w" "F32" "[0]" 8 4 + "," + entry "v" "F32" "[2]" 0 8 + "}", 8, Some "w", "reversed"
      "overlapping offsets", "{" + entry "a" "F32" "[2]" 0 8 + "," + entry "b" "F32" "[2]" 4 12 + "}", 12, Some "b", "overlap tensor 'a'"
      "a gap between tensors", "{" + entry "a" "F32" "[1]" 0 4 + "," + entry "b" "F32" "[1]" 8 12 + "}", 12, Some "b", "to no tensor"
      "bytes after the last tensor", "{" + entry "a" "F32" "[1]" 0 4 + "}", 8, Some "a", "belong to no tensor"
      "a name that appears twice", "{" + entry "w" "F32" "[1]" 0 4 + "," + entry "w" "F32" "[1]" 4 8 + "}", 8, Some "w", "appears twice"
      "a negative shape entry", "{" + entry "w" "F32" "[-1,4]" 0 4 + "}", 4, Some "w", "negative"
      "a fractional shape entry", "{" + entry "w" "F32" "[1.5]" 0 4 + "}", 4, Some "w", "not a 64-bit integer"
      "a shape whose byte count overflows 64 bits", "{" + entry "w" "F32" "[4611686018427387904,4]" 0 4 + "}", 4, Some "w", "overflows"
      "an empty shape whose other dimensions overflow 64 bits", "{" + entry "w" "F32" "[0,4611686018427387904,4]" 0 0 + "}", 0, Some "w", "overflows"
      "a shape too large for any integer", "{" + entry "w" "F32" "[99999999999999999999999]" 0 4 + "}", 4, Some "w", "not a 64-bit integer"
      "an entry without data_offsets", """{"w":{"dtype":"F32","shape":[1]}}""", 4, Some "w", "no 'data_offsets'"
      "data_offsets with three entries", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}""", 4, Some "w", "not [begin, end]"
      "an entry that is a string", """{"w":"F32"}""", 0, Some "w", "not an object"
      "a metadata value that is not a string", """{"__metadata__":{"format":1}}""", 0, None, "not a string" ]

let private hostileTests =
    testList "broken or hostile files raise a CheckpointException naming the file and tensor" [
        for what, header, dataBytes, tensor, fragment in hostileHeaders do
            testCase what <| fun () ->
                withTempDir (fun dir ->
                    let path = writeFile dir "bad.safetensors" (rawFile header (Array.zeroCreate dataBytes))
                    expectCheckpointError path tensor fragment (fun () -> (SafeTensors.Open path).LoadAll() |> disposeAll))
        testCase "a header length beyond the end of the file" <| fun () ->
            withTempDir (fun dir ->
                let bytes = handWritten ()
                BinaryPrimitives.WriteUInt64LittleEndian(Span<byte>(bytes, 0, 8), uint64 bytes.Length)
                let path = writeFile dir "long.safetensors" bytes
                expectCheckpointError path None "only" (fun () -> SafeTensors.Open path |> ignore))
        testCase "a header length of 2^64 − 1" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "huge.safetensors" (Array.append (Array.create 8 0xFFuy) (Array.zeroCreate 16))
                expectCheckpointError path None "18446744073709551615" (fun () -> SafeTensors.Open path |> ignore))
        testCase "a file shorter than the 8-byte length" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "short.safetensors" [| 1uy; 2uy; 3uy |]
                expectCheckpointError path None "shorter than" (fun () -> SafeTensors.Open path |> ignore))
        testCase "a header that is not UTF-8" <| fun () ->
            withTempDir (fun dir ->
                let bytes = rawFile "{\"w\":1}" [||]
                bytes[10] <- 0xFFuy
                let path = writeFile dir "latin.safetensors" bytes
                expectCheckpointError path None "UTF-8" (fun () -> SafeTensors.Open path |> ignore))
        testCase "a BOOL tensor holding a byte other than 0 or 1" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "bool.safetensors" (rawFile """{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}""" [| 0uy; 1uy; 2uy |])
                expectCheckpointError path (Some "m") "element 2" (fun () -> (SafeTensors.Open path).Load("m") |> ignore))
        testCase "a missing file" <| fun () ->
            withTempDir (fun dir ->
                let path = Path.Combine(dir, "absent.safetensors")
                expectCheckpointError path None "cannot open" (fun () -> SafeTensors.Open path |> ignore))
        testCase "a tensor name the file does not hold" <| fun () ->
            withTempDir (fun dir ->
                let path = writeFile dir "hand.safetensors" (handWritten ())
                expectCheckpointError path (Some "nope") "no tensor of that name" (fun () -> (SafeTensors.Open path).Load("nope") |> ignore))
        testCase "a file truncated after its header was read" <| fun () ->
            withTempDir (fun dir ->
                let bytes = handWritten ()
                let path = writeFile dir "shrinks.safetensors" bytes
                let file = SafeTensors.Open path
                File.WriteAllBytes(path, bytes[.. bytes.Length - 3])
                expectCheckpointError path None "changed after it was opened" (fun () -> file.LoadAll() |> disposeAll))
    ]

// ---------------------------------------------------------------------------------------------
// Random mutations of a valid file
// ---------------------------------------------------------------------------------------------

type Mutation =
    | Set of position: int * value: byte
    | Insert of position: int * value: byte
    | Delete of position: int
    | Truncate of length: int

let private applyMutation (bytes: byte[]) (m: Mutation) =
    let clamp i = if bytes.Length = 0 then 0 else min i (bytes.Length - 1)
    match m with
    | Set (p, v) when bytes.Length > 0 -> let b = Array.copy bytes in b[clamp p] <- v; b
    | Insert (p, v) -> Array.concat [ bytes[.. min p bytes.Length - 1]; [| v |]; bytes[min p bytes.Length ..] ]
    | Delete p when bytes.Length > 0 -> Array.append bytes[.. clamp p - 1] bytes[clamp p + 1 ..]
    | Truncate n -> bytes[.. min n bytes.Length - 1]
    | _ -> bytes

/// The valid file the mutations start from, laid out as HF's writer does (metadata first, space padding to a
/// multiple of 8): four small tensors, F32, BF16, F16 and BOOL, over random data bytes.
let private validFile =
    let header =
        """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b.weight":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"F16","shape":[2,2],"data_offsets":[32,40]},"d":{"dtype":"BOOL","shape":[3],"data_offsets":[40,43]}}"""
    let padded = header + String(' ', (8 - header.Length % 8) % 8)
    let data = Array.zeroCreate<byte> 43
    Random(5).NextBytes data
    data[40] <- 0uy; data[41] <- 1uy; data[42] <- 1uy
    rawFile padded data

let private mutationGen : Gen<Mutation list> =
    let bytes = validFile
    let headerEnd = 8 + int (BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(bytes, 0, 8)))
    let position = Gen.frequency [ 7, Gen.choose (0, headerEnd - 1); 3, Gen.choose (0, bytes.Length - 1) ]
    let value = Gen.oneof [ Gen.choose (0, 255) |> Gen.map byte; Gen.elements ("0123456789-+.eE\"{}[],: " |> Seq.map byte |> Seq.toList) ]
    let one =
        Gen.frequency [ 6, Gen.map2 (fun p v -> Set (p, v)) position value
                        2, Gen.map2 (fun p v -> Insert (p, v)) position value
                        2, Gen.map Delete position
                        1, Gen.choose (0, bytes.Length) |> Gen.map Truncate ]
    gen {
        let! n = Gen.choose (1, 3)
        return! Gen.listOfLength n one
    }

/// Opens and loads the mutated file: "loaded" when every tensor matches its header entry (dtype, shape, and
/// the bytes at its offsets), "rejected" on a CheckpointException; anything else fails the property.
let private openMutated (dir: string) (case: int) (bytes: byte[]) =
    let path = Path.Combine(dir, $"m{case}.safetensors")
    File.WriteAllBytes(path, bytes)
    try
        try
            let file = SafeTensors.Open path
            let loaded = file.LoadAll()
            try
                let dataStart = 8 + int (BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(bytes, 0, 8)))
                for e in file.Entries do
                    let t = loaded[e.Name]
                    if t.dtype <> e.ScalarType || not (Seq.forall2 (=) t.shape e.Shape) || t.shape.Length <> e.Shape.Count then
                        failwithf "tensor %s loaded as %A %A, header says %s %s" e.Name t.dtype t.shape e.DType e.ShapeText
                    if rawBytes t <> bytes[dataStart + int e.Begin .. dataStart + int e.End - 1] then
                        failwithf "tensor %s's bytes differ from the file's" e.Name
                "loaded"
            finally disposeAll loaded
        with :? CheckpointException -> "rejected"
    finally File.Delete path

let private mutationTests =
    testList "random damage" [
        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 300 }
            "random byte mutations, insertions, deletions and truncations of a valid file either load tensors matching their header or raise a CheckpointException (never another exception, a crash or a hang)" <|
            Prop.forAll (Arb.fromGen mutationGen) (fun mutations ->
                withTempDir (fun dir ->
                    let bytes = mutations |> List.fold applyMutation validFile
                    let run = Task.Run(fun () -> openMutated dir 0 bytes)
                    if not (run.Wait(TimeSpan.FromSeconds 10.0)) then failwithf "no answer within 10 s for %A" mutations
                    Expect.contains [ "loaded"; "rejected" ] run.Result "outcome"))
        testCase "the unmutated file loads" <| fun () ->
            withTempDir (fun dir -> Expect.equal (openMutated dir 0 validFile) "loaded" "the starting point is valid")
        testCase "every truncation of a valid file is rejected, naming the file" <| fun () ->
            withTempDir (fun dir ->
                let bytes = validFile
                for n in 0 .. bytes.Length - 1 do
                    let path = writeFile dir "cut.safetensors" bytes[.. n - 1]
                    expectCheckpointError path None "" (fun () -> (SafeTensors.Open path).LoadAll() |> disposeAll))
    ]

[<Tests>]
let tests =
    testList "SafeTensors" [ roundTripTests; handWrittenTests; hostileTests; mutationTests ]
