namespace Trd.Report

open System
open System.IO
open System.Text.Json

// The report's view of a study's results. The schema is defined once, by Trd.Runtime.Study.StudyResults (its records
// and their [JsonPropertyName]s); this view adds to every value the JSON pointer it has in results.json, so the page
// can say, for each number, where in results.json it lives. The view is built from the results in memory (the study
// just computed them) or from results.json, checked against that schema first.

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

/// TRD against the best baseline of one setting on one metric (the per-problem values are not viewed).
type BestBaselineGap = { Setting: Text; Metric: Text; Baseline: Text; Gap: Estimate }

/// A method's clip fraction and the teacher mass its top-K support would drop.
type ObjectiveCheck = { Setting: Text; Method: Text; ClipFraction: Estimate; TeacherMassOutsideTopK: Estimate option; TopK: Num }

/// A gym model's card.
type ModelCard =
    { Role: Text
      ModelSeed: Num
      Directory: Text
      SolveAccuracy: Num
      RefineAccuracy: Num option
      RefineWithReferenceAccuracy: Num option }

/// results.json: the whole study.
type StudyResults =
    { Study: StudyInfo
      Rows: ResultRow[]
      Diagnostics: DiagnosticRun[]
      Trajectories: TrajectoryAnalysis[]
      Subsets: SubsetRow[] option
      Claims: ClaimResult[]
      /// Absent in results written before the grid (then empty).
      BestBaseline: BestBaselineGap[]
      ObjectiveChecks: ObjectiveCheck[]
      ModelCards: ModelCard[]
      /// The gym variant's turned knobs (empty for the default gym).
      Gym: (string * Text)[] }

/// The report's view of Trd.Runtime's StudyResults: built from the records in memory (ofStudy) or from results.json
/// (parse, read), which is first checked against the records' schema so every error names the file and the JSON pointer.
[<RequireQualifiedAccess>]
module Results =

    type private R = Trd.Runtime.Study.StudyResults

    /// results.json's name in a study directory.
    [<Literal>]
    let FileName = R.FileName

    // ---- pointers: names from the schema's [JsonPropertyName]s -------------------------------------------------------

    /// The JSON name of a property of a schema record.
    let private jsonName (t: Type) (property: string) =
        match t.GetProperty property with
        | null -> invalidArg (nameof property) $"{t.Name} has no property {property}"
        | p -> Schema.jsonName p

    /// The pointer of a property of `record` below `at`: `at / name`.
    let internal under (at: string) (record: obj) (property: string) = JsonPointer.append at (jsonName (record.GetType()) property)

    let internal n (at: string) (v: float) : Num = { Value = v; Pointer = at }
    let internal t (at: string) (v: string) : Text = { Value = v; Pointer = at }
    let internal many (at: string) (view: string -> 'a -> 'b) (xs: 'a seq) = xs |> Seq.mapi (fun i x -> view (JsonPointer.appendIndex at i) x) |> Seq.toArray
    let internal keyed (at: string) (view: string -> 'a -> 'b) (xs: Collections.Generic.IDictionary<string, 'a>) =
        xs |> Seq.map (fun kv -> kv.Key, view (JsonPointer.append at kv.Key) kv.Value) |> Seq.toArray
    let internal optional (at: string) (view: string -> 'a -> 'b) (x: 'a | null) : 'b option =
        match x with
        | Null -> None
        | NonNull v -> Some(view at v)

    // ---- the view of each record ---------------------------------------------------------------------------------

    let internal estimate at (e: Trd.Runtime.Study.Estimate) : Estimate =
        let f = under at e
        { Mean = n (f (nameof e.Mean)) e.Mean; Low = n (f (nameof e.Low)) e.Low; High = n (f (nameof e.High)) e.High
          Seeds = n (f (nameof e.Seeds)) (float e.Seeds); Problems = n (f (nameof e.Problems)) (float e.Problems) }

    let private seedScore at (s: Trd.Runtime.Study.SeedScore) : SeedScore =
        let f = under at s
        { Seed = n (f (nameof s.Seed)) (float s.Seed); ModelSeed = Some(n (f (nameof s.ModelSeed)) (float s.ModelSeed))
          AvgAtK = n (f (nameof s.AvgAtK)) s.AvgAtK; PassAtK = n (f (nameof s.PassAtK)) s.PassAtK; Source = t (f (nameof s.Source)) s.Source }

    let private bucket at (b: Trd.Runtime.Study.BucketEstimate) : BucketEstimate =
        let f = under at b
        { Bucket = t (f (nameof b.Bucket)) b.Bucket; Problems = n (f (nameof b.Problems)) b.Problems
          AvgAtK = estimate (f (nameof b.AvgAtK)) b.AvgAtK; PassAtK = estimate (f (nameof b.PassAtK)) b.PassAtK }

    let private row at (r: Trd.Runtime.Study.ResultRow) : ResultRow =
        let f = under at r
        { Setting = t (f (nameof r.Setting)) r.Setting; Model = t (f (nameof r.Model)) r.Model; Label = t (f (nameof r.Label)) r.Label
          Trajectory = optional (f (nameof r.Trajectory)) t r.Trajectory
          AvgAtK = estimate (f (nameof r.AvgAtK)) r.AvgAtK; PassAtK = estimate (f (nameof r.PassAtK)) r.PassAtK
          DeltaAvgAtK = optional (f (nameof r.DeltaAvgAtK)) estimate r.DeltaAvgAtK
          DeltaPassAtK = optional (f (nameof r.DeltaPassAtK)) estimate r.DeltaPassAtK
          Buckets = many (f (nameof r.Buckets)) bucket r.Buckets
          PassAtKCurve = many (f (nameof r.PassAtKCurve)) n r.PassAtKCurve
          PerSeed = many (f (nameof r.PerSeed)) seedScore r.PerSeed }

    let private series at (s: Trd.Runtime.Study.Series) : Series =
        let f = under at s
        { Steps = many (f (nameof s.Steps)) (fun p (x: int64) -> n p (float x)) s.Steps
          Mean = many (f (nameof s.Mean)) n s.Mean; Min = many (f (nameof s.Min)) n s.Min; Max = many (f (nameof s.Max)) n s.Max }

    let private diagnostic at (d: Trd.Runtime.Study.DiagnosticRun) : DiagnosticRun =
        let f = under at d
        { Setting = t (f (nameof d.Setting)) d.Setting; Method = t (f (nameof d.Method)) d.Method; Label = t (f (nameof d.Label)) d.Label
          Trajectory = t (f (nameof d.Trajectory)) d.Trajectory; Metrics = keyed (f (nameof d.Metrics)) series d.Metrics
          Sources = many (f (nameof d.Sources)) t d.Sources }

    let private lengthStats at (l: Trd.Runtime.Study.LengthStats) : LengthStats =
        let f = under at l
        { Count = n (f (nameof l.Count)) (float l.Count); Mean = n (f (nameof l.Mean)) l.Mean; Median = n (f (nameof l.Median)) l.Median
          P10 = n (f (nameof l.P10)) l.P10; P90 = n (f (nameof l.P90)) l.P90; Values = l.Values |> Array.map float }

    let internal joint at (j: Trd.Runtime.Study.JointCounts) : JointCounts =
        let f = under at j
        { PassPass = n (f (nameof j.PassPass)) (float j.PassPass); PassFail = n (f (nameof j.PassFail)) (float j.PassFail)
          FailPass = n (f (nameof j.FailPass)) (float j.FailPass); FailFail = n (f (nameof j.FailFail)) (float j.FailFail) }

    let private trajectory at (a: Trd.Runtime.Study.TrajectoryAnalysis) : TrajectoryAnalysis =
        let f = under at a
        { Setting = t (f (nameof a.Setting)) a.Setting; Lengths = keyed (f (nameof a.Lengths)) lengthStats a.Lengths
          Accuracy = keyed (f (nameof a.Accuracy)) estimate a.Accuracy; Joint = joint (f (nameof a.Joint)) a.Joint
          Sources = many (f (nameof a.Sources)) t a.Sources }

    let private subset at (s: Trd.Runtime.Study.SubsetRow) : SubsetRow =
        let f = under at s
        { Setting = t (f (nameof s.Setting)) s.Setting; Method = t (f (nameof s.Method)) s.Method; Subset = t (f (nameof s.Subset)) s.Subset
          Examples = n (f (nameof s.Examples)) (float s.Examples)
          AvgAtK = estimate (f (nameof s.AvgAtK)) s.AvgAtK; PassAtK = estimate (f (nameof s.PassAtK)) s.PassAtK
          DeltaAvgAtK = optional (f (nameof s.DeltaAvgAtK)) estimate s.DeltaAvgAtK
          DeltaPassAtK = optional (f (nameof s.DeltaPassAtK)) estimate s.DeltaPassAtK
          Sources = many (f (nameof s.Sources)) t s.Sources }

    let internal claim at (c: Trd.Runtime.Study.ClaimResult) : ClaimResult =
        let f = under at c
        { Id = t (f (nameof c.Id)) c.Id; Setting = t (f (nameof c.Setting)) c.Setting; Claim = t (f (nameof c.Claim)) c.Claim
          Verdict = t (f (nameof c.Verdict)) c.Verdict; Measured = t (f (nameof c.Measured)) c.Measured; Rule = t (f (nameof c.Rule)) c.Rule }

    let private study at (s: Trd.Runtime.Study.StudyInfo) : StudyInfo =
        let f = under at s
        let started = JsonSerializer.Serialize(s.Started).Trim('"')          // as results.json writes it
        { Command = t (f (nameof s.Command)) s.Command; Quick = t (f (nameof s.Quick)) (if s.Quick then "true" else "false")
          Seeds = many (f (nameof s.Seeds)) (fun p (x: int64) -> n p (float x)) s.Seeds
          ModelSeeds = Some(n (f (nameof s.ModelSeeds)) (float s.ModelSeeds))
          Settings = many (f (nameof s.Settings)) t s.Settings; Methods = many (f (nameof s.Methods)) t s.Methods
          K = n (f (nameof s.K)) (float s.K); TrainProblems = n (f (nameof s.TrainProblems)) (float s.TrainProblems)
          HeldoutProblems = n (f (nameof s.HeldoutProblems)) (float s.HeldoutProblems)
          Models = keyed (f (nameof s.Models)) t s.Models; Machine = t (f (nameof s.Machine)) s.Machine
          Started = t (f (nameof s.Started)) started; Seconds = n (f (nameof s.Seconds)) s.Seconds
          Versions = keyed (f (nameof s.Versions)) t s.Versions }

    let private bestBaseline at (g: Trd.Runtime.Study.BestBaselineGap) : BestBaselineGap =
        let f = under at g
        { Setting = t (f (nameof g.Setting)) g.Setting; Metric = t (f (nameof g.Metric)) g.Metric
          Baseline = t (f (nameof g.Baseline)) g.Baseline; Gap = estimate (f (nameof g.Gap)) g.Gap }

    let private objectiveCheck at (c: Trd.Runtime.Study.ObjectiveCheck) : ObjectiveCheck =
        let f = under at c
        { Setting = t (f (nameof c.Setting)) c.Setting; Method = t (f (nameof c.Method)) c.Method
          ClipFraction = estimate (f (nameof c.ClipFraction)) c.ClipFraction
          TeacherMassOutsideTopK = optional (f (nameof c.TeacherMassOutsideTopK)) estimate c.TeacherMassOutsideTopK
          TopK = n (f (nameof c.TopK)) (float c.TopK) }

    let internal modelCard at (c: Trd.Runtime.Study.ModelCardSummary) : ModelCard =
        let f = under at c
        let maybe at (v: Nullable<float>) = if v.HasValue then Some(n at v.Value) else None
        { Role = t (f (nameof c.Role)) c.Role; ModelSeed = n (f (nameof c.ModelSeed)) (float c.ModelSeed)
          Directory = t (f (nameof c.Directory)) c.Directory; SolveAccuracy = n (f (nameof c.SolveAccuracy)) c.SolveAccuracy
          RefineAccuracy = maybe (f (nameof c.RefineAccuracy)) c.RefineAccuracy
          RefineWithReferenceAccuracy = maybe (f (nameof c.RefineWithReferenceAccuracy)) c.RefineWithReferenceAccuracy }

    /// The report's view of results computed in memory: the same values, each with its pointer in results.json.
    [<CompiledName("OfStudy")>]
    let ofStudy (r: R) : StudyResults =
        let f = under "" r
        { Study = study (f (nameof r.Study)) r.Study
          Rows = many (f (nameof r.Rows)) row r.Rows
          Diagnostics = many (f (nameof r.Diagnostics)) diagnostic r.Diagnostics
          Trajectories = many (f (nameof r.Trajectories)) trajectory r.Trajectories
          Subsets = optional (f (nameof r.Subsets)) (fun at xs -> many at subset xs) r.Subsets
          Claims = many (f (nameof r.Claims)) claim r.Claims
          BestBaseline = (match r.BestBaseline with | Null -> [||] | NonNull xs -> many (f (nameof r.BestBaseline)) bestBaseline xs)
          ObjectiveChecks = (match r.ObjectiveChecks with | Null -> [||] | NonNull xs -> many (f (nameof r.ObjectiveChecks)) objectiveCheck xs)
          ModelCards = (match r.ModelCards with | Null -> [||] | NonNull xs -> many (f (nameof r.ModelCards)) modelCard xs)
          Gym = (match r.Gym with | Null -> [||] | NonNull xs -> keyed (f (nameof r.Gym)) t xs) }

    /// Parses results.json's text: checked against the schema (Schema.check: every error names `source` and the JSON
    /// pointer of the value), then read into Trd.Runtime's records and viewed.
    [<CompiledName("Parse")>]
    let parse (source: string) (json: string) : StudyResults =
        let document =
            try JsonDocument.Parse(json, JsonDocumentOptions(AllowTrailingCommas = false))
            with :? JsonException as e -> raise (InvalidDataException($"{source}: not JSON: {e.Message}", e))
        use document = document
        Schema.check source typeof<R> document.RootElement
        match document.RootElement.Deserialize<R>(R.Json) with
        | Null -> raise (InvalidDataException $"{source}: (the document): null")
        | NonNull results -> ofStudy results

    /// Reads a study directory's results.json.
    [<CompiledName("Read")>]
    let read (studyDirectory: string) : StudyResults =
        let path = Path.Combine(studyDirectory, FileName)
        if not (File.Exists path) then
            raise (FileNotFoundException($"{path}: no results.json (has `trd study` finished in this directory?)", path))
        parse path (File.ReadAllText path)
