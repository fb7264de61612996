namespace Trd.Report

open System
open System.IO
open System.Text.Json

// The part of results.json (src/Trd.Runtime/Study/StudyResults.cs) that the report shows. Every printed value keeps
// the JSON pointer it was read from, so the page can say, for each number, where in results.json it lives.

/// A number of results.json and its JSON pointer. NaN where results.json has null (or an older file's "NaN").
type Num = { Value: float; Pointer: string }

/// A string (or boolean) of results.json and its JSON pointer.
type Text = { Value: string; Pointer: string }

/// A mean with its 95% interval (Trd.Core.Bootstrap).
type Estimate = { Mean: Num; Low: Num; High: Num; Seeds: Num; Problems: Num }

/// One seed's score of one model and the eval file it came from.
type SeedScore = { Seed: Num; ModelSeed: Num option; AvgAtK: Num; PassAtK: Num; Source: Text }

/// Avg@K and Pass@K over one base-difficulty bucket (Fig. 8).
type BucketEstimate = { Bucket: Text; Problems: Num; AvgAtK: Estimate; PassAtK: Estimate }

/// One row of Tables 1–4.
type ResultRow =
    { Setting: Text
      Model: Text
      Label: Text
      Trajectory: Text option
      AvgAtK: Estimate
      PassAtK: Estimate
      DeltaAvgAtK: Estimate option
      DeltaPassAtK: Estimate option
      Buckets: BucketEstimate[]
      PassAtKCurve: Num[]
      PerSeed: SeedScore[] }

/// One diagnostic over optimiser steps: mean over seeds, min and max.
type Series = { Steps: Num[]; Mean: Num[]; Min: Num[]; Max: Num[] }

/// Fig. 3's diagnostics of one method's training run; metrics in results.json's order.
type DiagnosticRun =
    { Setting: Text
      Method: Text
      Label: Text
      Trajectory: Text
      Metrics: (string * Series)[]
      Sources: Text[] }

/// Length summary (tokens) of one kind of trajectory.
type LengthStats = { Count: Num; Mean: Num; Median: Num; P10: Num; P90: Num; Values: float[] }

/// The 2×2 joint outcome of y_o and y_r.
type JointCounts = { PassPass: Num; PassFail: Num; FailPass: Num; FailFail: Num }

/// Fig. 5 (left) and Figs. 6–7 for one setting's training corpus.
type TrajectoryAnalysis =
    { Setting: Text
      Lengths: (string * LengthStats)[]
      Accuracy: (string * Estimate)[]
      Joint: JointCounts
      Sources: Text[] }

/// App. B.3: one method trained on one subset of the corpus.
type SubsetRow =
    { Setting: Text
      Method: Text
      Subset: Text
      Examples: Num
      AvgAtK: Estimate
      PassAtK: Estimate
      DeltaAvgAtK: Estimate option
      DeltaPassAtK: Estimate option
      Sources: Text[] }

/// One claim of the paper and its verdict.
type ClaimResult = { Id: Text; Setting: Text; Claim: Text; Verdict: Text; Measured: Text; Rule: Text }

/// What was run.
type StudyInfo =
    { Command: Text
      Quick: Text
      Seeds: Num[]
      /// Independent trainings of the models (absent in results written before --model-seeds: one).
      ModelSeeds: Num option
      Settings: Text[]
      Methods: Text[]
      K: Num
      TrainProblems: Num
      HeldoutProblems: Num
      Models: (string * Text)[]
      Machine: Text
      Started: Text
      Seconds: Num
      Versions: (string * Text)[] }

/// results.json: the whole study.
type StudyResults =
    { Study: StudyInfo
      Rows: ResultRow[]
      Diagnostics: DiagnosticRun[]
      Trajectories: TrajectoryAnalysis[]
      Subsets: SubsetRow[] option
      Claims: ClaimResult[] }

/// Reads results.json into the report's model. Every error names the file and the JSON pointer of the value.
[<RequireQualifiedAccess>]
module Results =

    /// results.json's name in a study directory.
    [<Literal>]
    let FileName = "results.json"

    /// A position in the document: the file it came from, where in it, and the value there.
    [<Struct>]
    type private At = { Source: string; Pointer: string; Element: JsonElement }

    let private where (at: At) = if at.Pointer = "" then "(the document)" else at.Pointer

    let private fail (at: At) (message: string) : 'T =
        raise (InvalidDataException $"{at.Source}: {where at}: {message}")

    let private describe (e: JsonElement) =
        let raw = e.GetRawText()
        let raw = if raw.Length > 40 then raw.Substring(0, 40) + "…" else raw
        match e.ValueKind with
        | JsonValueKind.Object -> "an object"
        | JsonValueKind.Array -> "an array"
        | JsonValueKind.String -> $"the string {raw}"
        | JsonValueKind.Null -> "null"
        | JsonValueKind.True | JsonValueKind.False -> $"the boolean {raw}"
        | _ -> $"the number {raw}"

    let private tryField (name: string) (at: At) : At option =
        if at.Element.ValueKind <> JsonValueKind.Object then fail at $"expected an object with field \"{name}\", got {describe at.Element}"
        match at.Element.TryGetProperty name with
        | true, e -> Some { at with Pointer = JsonPointer.append at.Pointer name; Element = e }
        | _ -> None

    let private field (name: string) (at: At) : At =
        match tryField name at with
        | Some a -> a
        | None -> fail at $"missing field \"{name}\""

    /// A field that may be null (or absent).
    let private nullable (name: string) (read: At -> 'T) (at: At) : 'T option =
        match tryField name at with
        | Some a when a.Element.ValueKind <> JsonValueKind.Null -> Some(read a)
        | _ -> None

    let private num (at: At) : Num =
        match Format.tryNumber at.Element with
        | Some v -> { Value = v; Pointer = at.Pointer }
        | None -> fail at $"expected a number, got {describe at.Element}"

    let private text (at: At) : Text =
        match at.Element.ValueKind with
        | JsonValueKind.String -> { Value = at.Element.GetString() |> string; Pointer = at.Pointer }
        | _ -> fail at $"expected a string, got {describe at.Element}"

    let private boolean (at: At) : Text =
        match at.Element.ValueKind with
        | JsonValueKind.True | JsonValueKind.False -> { Value = at.Element.GetRawText(); Pointer = at.Pointer }
        | _ -> fail at $"expected true or false, got {describe at.Element}"

    let private array (read: At -> 'T) (at: At) : 'T[] =
        if at.Element.ValueKind <> JsonValueKind.Array then fail at $"expected an array, got {describe at.Element}"
        at.Element.EnumerateArray()
        |> Seq.mapi (fun i e -> read { at with Pointer = JsonPointer.appendIndex at.Pointer i; Element = e })
        |> Seq.toArray

    /// A JSON object read as a dictionary, in the document's order.
    let private entries (read: At -> 'T) (at: At) : (string * 'T)[] =
        if at.Element.ValueKind <> JsonValueKind.Object then fail at $"expected an object, got {describe at.Element}"
        at.Element.EnumerateObject()
        |> Seq.map (fun p -> p.Name, read { at with Pointer = JsonPointer.append at.Pointer p.Name; Element = p.Value })
        |> Seq.toArray

    let private estimate (at: At) : Estimate =
        { Mean = field "mean" at |> num
          Low = field "low" at |> num
          High = field "high" at |> num
          Seeds = field "seeds" at |> num
          Problems = field "problems" at |> num }

    let private seedScore (at: At) : SeedScore =
        { Seed = field "seed" at |> num
          ModelSeed = nullable "model_seed" num at
          AvgAtK = field "avg_at_k" at |> num
          PassAtK = field "pass_at_k" at |> num
          Source = field "source" at |> text }

    let private bucket (at: At) : BucketEstimate =
        { Bucket = field "bucket" at |> text
          Problems = field "problems" at |> num
          AvgAtK = field "avg_at_k" at |> estimate
          PassAtK = field "pass_at_k" at |> estimate }

    let private row (at: At) : ResultRow =
        { Setting = field "setting" at |> text
          Model = field "model" at |> text
          Label = field "label" at |> text
          Trajectory = nullable "trajectory" text at
          AvgAtK = field "avg_at_k" at |> estimate
          PassAtK = field "pass_at_k" at |> estimate
          DeltaAvgAtK = nullable "delta_avg_at_k" estimate at
          DeltaPassAtK = nullable "delta_pass_at_k" estimate at
          Buckets = field "buckets" at |> array bucket
          PassAtKCurve = field "pass_at_k_curve" at |> array num
          PerSeed = field "per_seed" at |> array seedScore }

    let private series (at: At) : Series =
        { Steps = field "steps" at |> array num
          Mean = field "mean" at |> array num
          Min = field "min" at |> array num
          Max = field "max" at |> array num }

    let private diagnostic (at: At) : DiagnosticRun =
        { Setting = field "setting" at |> text
          Method = field "method" at |> text
          Label = field "label" at |> text
          Trajectory = field "trajectory" at |> text
          Metrics = field "series" at |> entries series
          Sources = field "sources" at |> array text }

    let private lengthStats (at: At) : LengthStats =
        { Count = field "count" at |> num
          Mean = field "mean" at |> num
          Median = field "median" at |> num
          P10 = field "p10" at |> num
          P90 = field "p90" at |> num
          Values = field "values" at |> array num |> Array.map _.Value }

    let private joint (at: At) : JointCounts =
        { PassPass = field "pass_pass" at |> num
          PassFail = field "pass_fail" at |> num
          FailPass = field "fail_pass" at |> num
          FailFail = field "fail_fail" at |> num }

    let private trajectory (at: At) : TrajectoryAnalysis =
        { Setting = field "setting" at |> text
          Lengths = field "lengths" at |> entries lengthStats
          Accuracy = field "accuracy" at |> entries estimate
          Joint = field "joint" at |> joint
          Sources = field "sources" at |> array text }

    let private subset (at: At) : SubsetRow =
        { Setting = field "setting" at |> text
          Method = field "method" at |> text
          Subset = field "subset" at |> text
          Examples = field "examples" at |> num
          AvgAtK = field "avg_at_k" at |> estimate
          PassAtK = field "pass_at_k" at |> estimate
          DeltaAvgAtK = nullable "delta_avg_at_k" estimate at
          DeltaPassAtK = nullable "delta_pass_at_k" estimate at
          Sources = field "sources" at |> array text }

    let private claim (at: At) : ClaimResult =
        { Id = field "id" at |> text
          Setting = field "setting" at |> text
          Claim = field "claim" at |> text
          Verdict = field "verdict" at |> text
          Measured = field "measured" at |> text
          Rule = field "rule" at |> text }

    let private study (at: At) : StudyInfo =
        { Command = field "command" at |> text
          Quick = field "quick" at |> boolean
          Seeds = field "seeds" at |> array num
          ModelSeeds = nullable "model_seeds" num at
          Settings = field "settings" at |> array text
          Methods = field "methods" at |> array text
          K = field "k" at |> num
          TrainProblems = field "train_problems" at |> num
          HeldoutProblems = field "heldout_problems" at |> num
          Models = field "models" at |> entries text
          Machine = field "machine" at |> text
          Started = field "started" at |> text
          Seconds = field "seconds" at |> num
          Versions = field "versions" at |> entries text }

    /// Parses results.json's text; `source` (the file's path) is named in every error.
    [<CompiledName("Parse")>]
    let parse (source: string) (json: string) : StudyResults =
        let document =
            try JsonDocument.Parse(json, JsonDocumentOptions(AllowTrailingCommas = false))
            with :? JsonException as e -> raise (InvalidDataException($"{source}: not JSON: {e.Message}", e))
        use document = document
        let root = { Source = source; Pointer = ""; Element = document.RootElement }
        { Study = field "study" root |> study
          Rows = field "rows" root |> array row
          Diagnostics = field "diagnostics" root |> array diagnostic
          Trajectories = field "trajectories" root |> array trajectory
          Subsets = nullable "subsets" (array subset) root
          Claims = field "claims" root |> array claim }

    /// Reads a study directory's results.json.
    [<CompiledName("Read")>]
    let read (studyDirectory: string) : StudyResults =
        let path = Path.Combine(studyDirectory, FileName)
        if not (File.Exists path) then
            raise (FileNotFoundException($"{path}: no results.json (has `trd study` finished in this directory?)", path))
        parse path (File.ReadAllText path)
