/// Shared by the checkpoint tests: temporary directories, raw tensor bytes, tensors of random bits,
/// safetensors files assembled by hand (not by the writer under test), and the CheckpointException check.
module Trd.Tests.CheckpointHelpers

open System
open System.Buffers.Binary
open System.Collections.Generic
open System.IO
open System.Text
open Expecto
open TorchSharp
open Trd.Runtime.Checkpoints

/// Runs f in a fresh temporary directory, removed afterwards.
let withTempDir (f: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "trd-checkpoint-tests-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try f dir
    finally (try Directory.Delete(dir, true) with _ -> ())

/// A tensor's bytes as stored in memory (row-major).
let rawBytes (t: torch.Tensor) : byte[] =
    use c = t.contiguous()
    c.bytes.ToArray()

/// A tensor of the given dtype and shape made of random bits: every pattern a float can hold (NaN payloads,
/// ±∞, subnormals, −0), so that equality of bytes, not of values, is what a round trip must keep. Bool gets 0/1.
let randomTensor (rng: Random) (dtype: torch.ScalarType) (shape: int64[]) : torch.Tensor =
    let t = torch.empty(shape, dtype = dtype)
    let bytes = Array.zeroCreate<byte> (int (t.NumberOfElements * t.ElementSize))
    rng.NextBytes bytes
    if dtype = torch.ScalarType.Bool then
        for i in 0 .. bytes.Length - 1 do bytes[i] <- bytes[i] &&& 1uy
    if bytes.Length > 0 then t.bytes <- Span<byte>(bytes)
    t

/// A safetensors file assembled from its parts: 8-byte little-endian header length, the header as given, data.
let rawFile (header: string) (data: byte[]) : byte[] =
    let json = Encoding.UTF8.GetBytes header
    let length = Array.zeroCreate<byte> 8
    BinaryPrimitives.WriteUInt64LittleEndian(Span<byte>(length), uint64 json.Length)
    Array.concat [ length; json; data ]

/// Writes bytes to dir/name and returns the path.
let writeFile (dir: string) (name: string) (bytes: byte[]) =
    let path = Path.Combine(dir, name)
    File.WriteAllBytes(path, bytes)
    path

let disposeAll (tensors: IDictionary<string, torch.Tensor>) =
    for t in tensors.Values do t.Dispose()

/// f raises a CheckpointException whose message names the file (by path or file name), the tensor when given
/// (also its Tensor property), and contains the fragment.
let expectCheckpointError (file: string) (tensor: string option) (fragment: string) (f: unit -> unit) =
    let e =
        try
            f ()
            failtest $"expected a CheckpointException about {file}, but the call succeeded"
        with :? CheckpointException as e -> e
    Expect.stringContains e.Message file $"the message names the file: {e.Message}"
    match tensor with
    | Some t ->
        Expect.equal e.Tensor t $"the exception's Tensor: {e.Message}"
        Expect.stringContains e.Message $"'{t}'" $"the message names the tensor: {e.Message}"
    | None -> ()
    Expect.stringContains e.Message fragment $"the message says what is wrong: {e.Message}"
