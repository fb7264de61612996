namespace Trd.Core

open System
open System.Runtime.InteropServices

/// Which trajectory the student is distilled along.
/// Rollout: the student's own sample y_o ~ π_θ(· | x) (dense-KL baselines, Eq. 1–2).
/// Refined: the teacher's rewrite y_r ~ π_T(· | x, y_o) (TRD, Eq. 5–6).
type Trajectory =
    | Rollout
    | Refined

    override this.ToString() = match this with Rollout -> "y_o" | Refined -> "y_r"

/// OPD: a separate, frozen teacher model. OPSD: the student's own backbone (adapters off, stop-gradient)
/// conditioned on the reference solution y* (§3, Eq. 2).
type Setting =
    | Opd
    | Opsd

    override this.ToString() = match this with Opd -> "OPD" | Opsd -> "OPSD"

    /// The setting's word in configs, on the command line and in run-directory names: "opd", "opsd".
    member this.ConfigName = match this with Opd -> "opd" | Opsd -> "opsd"

    /// Both settings, OPD first.
    static member All = [| Opd; Opsd |]

    /// The setting a config word names (case ignored), or null.
    static member TryParse(name: string) : Setting =
        let key = if obj.ReferenceEquals(name, null) then "" else name.Trim().ToLowerInvariant()
        Setting.All |> Array.tryFind (fun s -> s.ConfigName = key) |> Option.defaultValue Unchecked.defaultof<Setting>

/// The teacher's prompt (Table 13): Vanilla sees the problem (and y* under OPSD) and the trajectory
/// prefix; Refine additionally sees the rollout y_o that was rewritten into y_r (Eq. 6).
type TeacherPrompt =
    | Vanilla
    | Refine

/// One piece of a conditioning context, in the order it is presented.
type ContextPart =
    /// The problem x.
    | Problem
    /// The reference solution y* (OPSD only).
    | ReferenceSolution
    /// The whole stage-1 rollout y_o, shown to the teacher when it scores a refined trajectory.
    | WholeRollout
    /// The prefix y_<t of the trajectory being trained on (y_o or y_r).
    | TrajectoryPrefix

/// A distillation objective as a value: every choice the paper's methods differ in (Table 13).
/// Adding a method means adding a value (see Recipes), not a branch.
type Recipe =
    { Name: string
      Direction: Direction
      Support: Support
      Estimator: Estimator
      Clip: Clip
      /// T in p_T(v) ∝ exp(ℓ_v / T), applied once to both sides (App. C.8; the paper uses T = 1).
      Temperature: float
      Trajectory: Trajectory
      TeacherPrompt: TeacherPrompt
      /// w_t multiplying each position's term (Shaping.fs); Uniform is the paper's recipe.
      Weighting: Weighting
      /// A per-position choice of another divergence where a gate fails; NoSwitch is the paper's recipe.
      Switch: Switch
      /// Whole trajectories dropped before the step's token count; KeepAll is the paper's recipe.
      Filter: TrajectoryFilter
      /// Step-global standardisation of the policy-gradient rewards; Off is the paper's recipe.
      StepNormalisation: StepNormalisation
      /// The exact divergence's gradient (the paper's) or a policy-gradient estimate.
      Gradient: GradientEstimate }

    member r.WithName(name: string) = { r with Name = name }
    member r.WithDirection(direction: Direction) = { r with Direction = direction }
    member r.WithSupport(support: Support) = { r with Support = support }
    member r.WithEstimator(estimator: Estimator) = { r with Estimator = estimator }
    member r.WithClip(clip: Clip) = { r with Clip = clip }
    member r.WithTemperature(temperature: float) = { r with Temperature = temperature }
    member r.WithTrajectory(trajectory: Trajectory) = { r with Trajectory = trajectory }
    member r.WithTeacherPrompt(prompt: TeacherPrompt) = { r with TeacherPrompt = prompt }
    member r.WithWeighting(weighting: Weighting) = { r with Weighting = weighting }
    member r.WithSwitch(switch: Switch) = { r with Switch = switch }
    member r.WithFilter(filter: TrajectoryFilter) = { r with Filter = filter }
    member r.WithStepNormalisation(normalisation: StepNormalisation) = { r with StepNormalisation = normalisation }
    member r.WithGradient(gradient: GradientEstimate) = { r with Gradient = gradient }

    /// Whether any shaping primitive differs from the paper's (uniform weights, no switch, no filter, no step
    /// normalisation, the exact gradient): such a recipe needs the trajectory statistics of the whole step first.
    member r.IsShaped =
        r.Weighting <> Uniform || r.Switch <> NoSwitch || r.Filter <> KeepAll || r.StepNormalisation <> Off || r.Gradient <> ExactGradient

    /// Every reason the recipe cannot be evaluated; empty when it is valid.
    member recipe.Problems() : string[] =
        [| if String.IsNullOrWhiteSpace recipe.Name then yield "the recipe has no name"
           if not (recipe.Temperature > 0.0) || Double.IsInfinity recipe.Temperature then
               yield $"temperature must be a finite number > 0, got {recipe.Temperature}"
           match recipe.Direction with
           | Jsd b when Double.IsNaN b || b < 0.0 || b > 1.0 -> yield $"JSD β must lie in [0, 1], got {b}"
           | _ -> ()
           match recipe.Support with
           | TeacherTopK k | TeacherTopKWithTail k when k < 1 -> yield $"top-K needs K ≥ 1, got K = {k}"
           | _ -> ()
           match recipe.Clip with
           | PerPosition c | PerVocabEntry c when Double.IsNaN c || c <= 0.0 || Double.IsInfinity c ->
               yield $"the clip constant c must be a finite number > 0, got {c}"
           | _ -> ()
           if Estimator.isSampled recipe.Estimator then
               if recipe.Direction <> Reverse then
                   yield $"the sampled estimator {recipe.Estimator} estimates the reverse KL from the student's token; it cannot estimate {recipe.Direction}"
               if recipe.Support <> FullVocabulary then
                   yield $"the sampled estimator {recipe.Estimator} reads one token's log-probabilities; a {recipe.Support} support does not apply"
               match recipe.Clip with
               | PerVocabEntry _ -> yield "per-vocabulary-entry clipping needs the exact estimator (there are no entries to clip)"
               | _ -> ()
           if recipe.TeacherPrompt = Refine && recipe.Trajectory = Rollout then
               yield "the refine teacher prompt conditions on y_o while scoring y_r: it needs Trajectory = Refined"
           yield! Shaping.problems recipe.Weighting recipe.Switch recipe.Filter recipe.StepNormalisation recipe.Gradient
           match recipe.Gradient with
           | PolicyGradient _ ->
               if recipe.Estimator <> Exact then
                   yield $"the policy-gradient form builds its own per-token estimate; the estimator must be exact (the divergence it reports), got {recipe.Estimator}"
               if recipe.Clip <> NoClip then yield "the policy-gradient form does not clip the divergence; use the reward clamp or the ratio clip"
           | ExactGradient -> () |]

    /// Throws ArgumentException listing every problem, or returns the recipe unchanged.
    member r.Validate() : Recipe =
        match r.Problems() with
        | [||] -> r
        | ps -> invalidArg "recipe" (sprintf "recipe '%s' is invalid: %s" r.Name (String.Join("; ", ps)))

    override r.ToString() =
        let core = $"{r.Name}: {r.Direction}, {r.Support}, {r.Estimator}, {r.Clip}, T={r.Temperature}, along {r.Trajectory}, {r.TeacherPrompt} teacher prompt"
        if not r.IsShaped then core
        else
            let parts =
                [ if r.Weighting <> Uniform then $"weights {r.Weighting}"
                  if r.Switch <> NoSwitch then string r.Switch
                  if r.Filter <> KeepAll then string r.Filter
                  if r.StepNormalisation <> Off then "step-standardised"
                  if r.Gradient <> ExactGradient then string r.Gradient ]
            core + "; " + String.Join("; ", parts)

    /// A recipe with the paper's defaults for everything not given (full vocabulary, exact, no clip,
    /// T = 1, along y_o, vanilla teacher prompt). Callable from C# with named optional arguments.
    static member Create
        (
            name: string,
            direction: Direction,
            [<Optional>] support: Support,
            [<Optional>] estimator: Estimator,
            [<Optional>] clip: Clip,
            [<Optional; DefaultParameterValue(1.0)>] temperature: float,
            [<Optional>] trajectory: Trajectory,
            [<Optional>] teacherPrompt: TeacherPrompt,
            [<Optional>] weighting: Weighting,
            [<Optional>] switch: Switch,
            [<Optional>] filter: TrajectoryFilter,
            [<Optional>] stepNormalisation: StepNormalisation,
            [<Optional>] gradient: GradientEstimate
        ) =
        let orDefault (d: 'a) (x: 'a) = if isNull (box x) then d else x
        { Name = name
          Direction = direction
          Support = support |> orDefault FullVocabulary
          Estimator = estimator |> orDefault Exact
          Clip = clip |> orDefault NoClip
          Temperature = temperature
          Trajectory = trajectory |> orDefault Rollout
          TeacherPrompt = teacherPrompt |> orDefault Vanilla
          Weighting = weighting |> orDefault Uniform
          Switch = switch |> orDefault NoSwitch
          Filter = filter |> orDefault KeepAll
          StepNormalisation = stepNormalisation |> orDefault Off
          Gradient = gradient |> orDefault ExactGradient }

module Recipe =

    /// Every reason the recipe cannot be evaluated; empty when it is valid.
    [<CompiledName("Problems")>]
    let problems (recipe: Recipe) : string[] = recipe.Problems()

    /// Throws ArgumentException listing every problem, or returns the recipe unchanged.
    [<CompiledName("Validate")>]
    let validate (recipe: Recipe) = recipe.Validate()

    /// What the student is conditioned on: π_θ(· | x, y_<t), with y the recipe's trajectory.
    [<CompiledName("StudentContext")>]
    let studentContext (_: Recipe) : ContextPart[] = [| Problem; TrajectoryPrefix |]

    /// What the teacher is conditioned on (Eq. 1, 2 and 6):
    /// OPD vanilla π_T(· | x, y_<t); OPSD vanilla π_θ(· | x, y*, y_<t);
    /// refine π_T(· | x, y_o, y_r,<t), with y* after y_o under OPSD.
    [<CompiledName("TeacherContext")>]
    let teacherContext (setting: Setting) (recipe: Recipe) : ContextPart[] =
        match recipe.TeacherPrompt, setting with
        | Vanilla, Opd -> [| Problem; TrajectoryPrefix |]
        | Vanilla, Opsd -> [| Problem; ReferenceSolution; TrajectoryPrefix |]
        | Refine, Opd -> [| Problem; WholeRollout; TrajectoryPrefix |]
        | Refine, Opsd -> [| Problem; WholeRollout; ReferenceSolution; TrajectoryPrefix |]

/// The paper's five methods (Table 13) as values, with its defaults (Tables 13–14).
module Recipes =

    /// The paper's per-position clip constant: c = 0.1 for OPD ("clip01"), 0.06 for OPSD (App. C.6).
    [<CompiledName("PaperClipConstant")>]
    let paperClipConstant (setting: Setting) = match setting with Opd -> 0.1 | Opsd -> 0.06

    /// The paper's top-K for "Reverse KL w/ Top-K".
    [<Literal>]
    let PaperTopK = 32

    /// +Forward KL: forward KL, full vocabulary, along y_o.
    [<CompiledName("ForwardKl")>]
    let forwardKl = Recipe.Create("Forward KL", Forward)

    /// +Forward KL w/ Clip: forward KL capped per position at c (0.1 OPD, 0.06 OPSD).
    [<CompiledName("ForwardKlClip")>]
    let forwardKlClip (setting: Setting) =
        Recipe.Create("Forward KL w/ Clip", Forward, clip = PerPosition(paperClipConstant setting))

    /// +Reverse KL: reverse KL, full vocabulary, along y_o.
    [<CompiledName("ReverseKl")>]
    let reverseKl = Recipe.Create("Reverse KL", Reverse)

    /// +Reverse KL w/ Top-K: reverse KL on the teacher's top-32, both sides renormalised.
    [<CompiledName("ReverseKlTopK")>]
    let reverseKlTopK = Recipe.Create("Reverse KL w/ Top-K", Reverse, support = TeacherTopK PaperTopK)

    /// TRD: forward KL over the full vocabulary along the refined trajectory y_r, the teacher seeing
    /// the refinement context (Eq. 6).
    [<CompiledName("Trd")>]
    let trd = Recipe.Create("TRD", Forward, trajectory = Refined, teacherPrompt = Refine)

    /// The five methods compared in Tables 1–4, in the paper's order.
    [<CompiledName("All")>]
    let all (setting: Setting) = [| forwardKl; forwardKlClip setting; reverseKl; reverseKlTopK; trd |]
