/// The config's "objective" object: a recipe written out field by field over the named one.
module Trd.Tests.ObjectiveSpecTests

open System
open Expecto
open Trd.Core
open Trd.Runtime.Pipeline

let private config (recipe: string) (objective: string) =
    $$$"""{"recipe": "{{{recipe}}}", "objective": {{{objective}}}, "problems": "p.jsonl", "student": {"path": "s"}, "teacher": {"path": "t"}}"""

let private resolve recipe objective = (PipelineConfig.Parse(config recipe objective, "c.json")).Validated("c.json").Recipe

let private refused (recipe: string) (objective: string) (fragment: string) =
    try
        resolve recipe objective |> ignore
        failtest $"{objective} on {recipe} was accepted"
    with :? ConfigException as e -> Expect.stringContains e.Message fragment $"the error names {fragment}"

/// Every recipe the algebra can express (valid or not), from a seed.
let private randomRecipe (rng: Random) =
    let direction = match rng.Next 3 with 0 -> Forward | 1 -> Reverse | _ -> Jsd(float (rng.Next 11) / 10.0)
    let support = match rng.Next 3 with 0 -> FullVocabulary | 1 -> TeacherTopK(1 + rng.Next 64) | _ -> TeacherTopKWithTail(1 + rng.Next 64)
    let estimator = match rng.Next 4 with 0 -> Exact | 1 -> K1 | 2 -> K2 | _ -> K3
    let clip = match rng.Next 3 with 0 -> NoClip | 1 -> PerPosition(rng.NextDouble() + 0.01) | _ -> PerVocabEntry(rng.NextDouble() + 0.01)
    { Name = $"r{rng.Next 1000}"; Direction = direction; Support = support; Estimator = estimator; Clip = clip
      Temperature = 0.25 + 2.0 * rng.NextDouble()
      Trajectory = (if rng.Next 2 = 0 then Rollout else Refined)
      TeacherPrompt = (if rng.Next 2 = 0 then Vanilla else Refine)
      Weighting = Uniform; Switch = NoSwitch; Filter = KeepAll; StepNormalisation = Off; Gradient = ExactGradient }

[<Tests>]
let tests =
    testList "ObjectiveSpec" [
        testCase "the method catalogue: every method's config name parses to a recipe in both settings, ids and order are one list" <| fun () ->
            Expect.equal (Array.append Methods.all Methods.shaped |> Array.map (fun m -> m.ConfigName) |> List.ofArray) (List.ofSeq RecipeNames.All) "the config's names are the catalogue's"
            Expect.equal (Methods.all |> Array.map (fun m -> m.ConfigName)) [| "forward-kl"; "forward-kl-clip"; "reverse-kl"; "reverse-kl-topk"; "trd" |] "the paper's five, the study's default"
            Expect.equal (Methods.shaped |> Array.map (fun m -> m.ConfigName)) (ShapedMethods.all |> Array.map (fun m -> m.ConfigName)) "the shaped methods' rows"
            for m in Methods.shaped do
                Expect.equal (Methods.recipeOf m Opd) (ShapedMethods.defaultOf (ShapedMethods.tryFind m.ConfigName)) $"{m.ConfigName}: its defaults"
                Expect.isFalse (Methods.isPaperMethod m) $"{m.ConfigName} is not one of the paper's"
            for m in Array.append Methods.all Methods.shaped do
                Expect.equal (Methods.tryOfConfigName m.ConfigName) m $"{m.ConfigName} parses"
                for setting in Setting.All do
                    Expect.equal (Methods.tryOfRecipe (Methods.recipeOf m setting) setting) m $"{m.ConfigName}'s recipe names it back under {setting}"
                Expect.equal (Methods.idOf m.ConfigName) m.Id $"{m.ConfigName}: results.json's id"
                Expect.equal (Methods.label m.Id) m.Label $"{m.Id}: label"
            Expect.equal (Methods.rows |> Array.map (fun r -> r.Id) |> Array.distinct).Length Methods.rows.Length "ids are distinct"
            Expect.equal (Methods.rows |> Array.map (fun r -> r.Colour) |> Array.distinct).Length Methods.rows.Length "colours are distinct"
            Expect.equal (Methods.rank "trd") (Methods.rows.Length - 1) "TRD last"
            Expect.equal (Methods.rank "my-ablation") Methods.rows.Length "an uncatalogued row after the catalogue"

        testCase "From writes a recipe out whole: applied over any named recipe it gives the recipe back" <| fun () ->
            let rng = Random 11
            for _ in 1 .. 500 do
                let recipe = randomRecipe rng
                let spec = ObjectiveSpec.From recipe
                for named in Recipes.all Opd do
                    Expect.equal (spec.Apply named) recipe $"From({recipe}) over {named.Name}"

        testCase "a config's objective round-trips through JSON (what config.json records)" <| fun () ->
            let rng = Random 12
            for _ in 1 .. 100 do
                let recipe = randomRecipe rng
                let written =
                    PipelineConfig(Setting = (if rng.Next 2 = 0 then Opd else Opsd), Recipe = recipe, Problems = "p.jsonl",
                                   Student = ModelSpec(Path = "s"), Teacher = ModelSpec(Path = "t")).ToJson()
                Expect.equal (PipelineConfig.Parse(written).Recipe) recipe $"JSON round trip of {recipe}"
            for setting in Setting.All do
                for m in Methods.all do
                    let written = PipelineConfig(Setting = setting, Recipe = Methods.recipeOf m setting).ToJson()
                    Expect.stringContains written $"\"recipe\": \"{m.ConfigName}\"" $"{m.ConfigName} under {setting} is written by name"
                    Expect.isFalse (written.Contains "\"objective\"") $"{m.ConfigName} under {setting}: no objective"
                    Expect.equal (PipelineConfig.Parse(written).Recipe) (Methods.recipeOf m setting) $"{m.ConfigName} under {setting} reads back"

        testCase "fields left out keep the named recipe's: clip_c alone moves Forward KL w/ Clip's constant" <| fun () ->
            Expect.equal (resolve "forward-kl-clip" """{"clip_c": 0.3}""") (Recipes.forwardKlClip(Opd).WithClip(PerPosition 0.3)) "c = 0.3"
            Expect.equal (resolve "reverse-kl-topk" """{"top_k": 8}""") (Recipes.reverseKlTopK.WithSupport(TeacherTopK 8)) "K = 8"
            Expect.equal (resolve "trd" """{"temperature": 2.0}""") (Recipes.trd.WithTemperature 2.0) "T = 2"
            Expect.equal (resolve "trd" """{"direction": "jsd", "jsd_beta": 0.5, "name": "TRD-JSD"}""")
                (Recipes.trd.WithDirection(Jsd 0.5).WithName "TRD-JSD") "JSD β = 0.5 along y_r"
            Expect.equal (resolve "trd" "{}") Recipes.trd "an empty objective is the named recipe"

        testCase "a field that does not apply or an unknown value is refused, naming the field" <| fun () ->
            refused "forward-kl" """{"jsd_beta": 0.5}""" "objective.jsd_beta"
            refused "forward-kl" """{"top_k": 8}""" "objective.top_k"
            refused "forward-kl" """{"clip_c": 0.1}""" "objective.clip_c"
            refused "trd" """{"direction": "jsd"}""" "objective.direction: 'jsd' needs objective.jsd_beta"
            refused "trd" """{"direction": "sideways"}""" "objective.direction: unknown value 'sideways'"
            refused "trd" """{"support": "top-k"}""" "needs objective.top_k"
            refused "trd" """{"clip": "per-entry"}""" "needs objective.clip_c"
            refused "trd" """{"trajectory": "y_x"}""" "objective.trajectory"
            refused "trd" """{"estimator": "k4"}""" "objective.estimator"

        testCase "an objective the algebra rejects is refused when the config is validated, with the algebra's reason" <| fun () ->
            let bad = PipelineConfig.Parse(config "trd" """{"clip": "per-position", "clip_c": -1}""")
            try bad.Validated("c.json") |> ignore; failtest "c < 0 accepted"
            with :? ConfigException as e -> Expect.stringContains e.Message "clip constant c must be a finite number > 0" "reason"
            let sampled = PipelineConfig.Parse(config "forward-kl" """{"estimator": "k3"}""")
            try sampled.Validated("c.json") |> ignore; failtest "k3 on forward KL accepted"
            with :? ConfigException as e -> Expect.stringContains e.Message "cannot estimate" "reason"

        testCase "a misspelt key inside the objective is an error naming it" <| fun () ->
            try PipelineConfig.Parse(config "trd" """{"clip_constant": 0.3}""", "c.json") |> ignore; failtest "accepted"
            with :? ConfigException as e -> Expect.stringContains e.Message "clip_constant" "names the key"

        testCase "a shaped method by name: its defaults, its parameters, the fields on top of it" <| fun () ->
            let noRecipe (objective: string) =
                $$$"""{"objective": {{{objective}}}, "problems": "p.jsonl", "student": {"path": "s"}, "teacher": {"path": "t"}}"""
            let read objective = (PipelineConfig.Parse(noRecipe objective, "c.json")).Validated("c.json").Recipe
            for m in ShapedMethods.all do
                Expect.equal (read $$$"""{"method": "{{{m.ConfigName}}}"}""") (ShapedMethods.defaultOf m) $"{m.ConfigName} with its defaults"
            let parameters = System.Collections.Generic.Dictionary<string, float>(dict [ "window", 8.0; "threshold", 1.0 ])
            Expect.equal (read """{"method": "topd", "window": 8, "threshold": 1.0}""") (ShapedMethods.topd.Create parameters) "TOPD, w = 8, θ = 1"
            Expect.equal (read """{"method": "topd", "trajectory": "y_r", "teacher_prompt": "refine"}""")
                ((ShapedMethods.defaultOf ShapedMethods.topd).WithTrajectory(Refined).WithTeacherPrompt(Refine)) "TOPD along y_r"
            Expect.equal (read """{"method": "opd-plus", "corrected": false}""").Gradient
                (PolicyGradient { Reward = FDivergence false; RewardClip = 0.0; Gamma = 0.0; RatioClip = 0.0 }) "OPD+'s biased surrogate"
            let refusedWithout (objective: string) (fragment: string) =
                try read objective |> ignore; failtest $"{objective} was accepted"
                with :? ConfigException as e -> Expect.stringContains e.Message fragment $"{objective}: the error names {fragment}"
            refusedWithout """{"method": "nope"}""" "objective.method: unknown value 'nope'"
            refusedWithout """{"method": "sg-opd", "window": 3}""" "objective.window: 'window' is not a parameter of sg-opd (its parameters: lambda)"
            refusedWithout """{"method": "sg-opd", "lambda": 2}""" "objective.lambda: sg-opd's lambda must be a number in [0, 1], got 2"
            refusedWithout """{"method": "esr", "first_tokens": 2.5}""" "objective.first_tokens"
            refusedWithout """{"window": 3}""" "objective.window: applies only with objective.method"
            refused "trd" """{"method": "topd"}""" "leave out"

        testCase "shaped methods round-trip through From and through config.json; the paper's canonical text is unchanged" <| fun () ->
            for m in ShapedMethods.all do
                for isDefault, r in [ true, ShapedMethods.defaultOf m; false, (ShapedMethods.defaultOf m).WithTrajectory(Refined).WithTeacherPrompt(Refine).WithTemperature(0.8) ] do
                    Expect.equal ((ObjectiveSpec.From r).Apply Recipes.trd) r $"From({r.Name}) over TRD"
                    let written = PipelineConfig(Recipe = r, Problems = "p.jsonl", Student = ModelSpec(Path = "s"), Teacher = ModelSpec(Path = "t")).ToJson()
                    // At its defaults a method is written as the recipe's name, like the paper's five; otherwise as an objective.
                    let expected = if isDefault then $"\"recipe\": \"{m.ConfigName}\"" else $"\"method\": \"{m.ConfigName}\""
                    Expect.stringContains written expected $"{m.ConfigName} is written by name"
                    Expect.equal (PipelineConfig.Parse(written).Recipe) r $"{m.ConfigName}: JSON round trip"
            // A shaped method named as the recipe takes its parameters from the objective object.
            let parameters = System.Collections.Generic.Dictionary<string, float>(dict [ "window", 8.0 ])
            Expect.equal (resolve "topd" """{"window": 8}""") (ShapedMethods.topd.Create parameters) "\"recipe\": \"topd\" with objective.window = 8"
            refused "sg-opd" """{"window": 8}""" "objective.window"
            Expect.equal ((ObjectiveSpec.From Recipes.trd).Canonical()) "forward;-;full;-;exact;none;-;1;y_r;refine" "TRD's canonical text (its ablation directory hash)"
            Expect.stringContains ((ObjectiveSpec.From(ShapedMethods.defaultOf ShapedMethods.esr)).Canonical()) ";method=esr;first_tokens=16" "a method's"
            let custom = Recipes.reverseKl.WithWeighting(Gated(FirstTokens 3)).WithFilter(DropLowestTeacherLogProb 0.5)
            try ObjectiveSpec.From custom |> ignore; failtest "an uncatalogued shaping was written"
            with :? ConfigException as e -> Expect.stringContains e.Message "not one of the named methods" "says why"
    ]
