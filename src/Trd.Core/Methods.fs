namespace Trd.Core

/// One row of the paper's comparison (Tables 1–4, Table 13): a distillation method, or one of the two reference
/// models (the base student and the OPD teacher). One catalogue for every place that names them: the config, the
/// study, results.json, the report and its charts.
type ComparisonRow =
    { /// results.json's id and the report's key: "forward_kl".
      Id: string
      /// The config name (`"recipe"`, `trd study --methods`): "forward-kl"; empty for the reference models.
      ConfigName: string
      /// The paper's name: "Forward KL".
      Label: string
      /// The row's colour in every chart (hex), so a method looks the same in every figure.
      Colour: string }

    /// Whether the row is a distillation method (it has a config name), not a reference model.
    member r.IsMethod = r.ConfigName <> ""

/// The comparison's rows in the paper's order (Table 13): Base, Teacher, the four baselines, then the shaped methods
/// beyond the paper, then TRD.
module Methods =

    let private row id configName label colour = { Id = id; ConfigName = configName; Label = label; Colour = colour }

    /// The base student before training.
    [<CompiledName("Base")>]
    let baseModel = row "base" "" "Base" "#7f7f7f"

    /// The OPD teacher π_T.
    [<CompiledName("Teacher")>]
    let teacher = row "teacher" "" "Teacher" "#3b3b3b"

    /// Forward KL along y_o.
    [<CompiledName("ForwardKl")>]
    let forwardKl = row "forward_kl" "forward-kl" "Forward KL" "#1f77b4"

    /// Forward KL along y_o with the per-position clip.
    [<CompiledName("ForwardKlClip")>]
    let forwardKlClip = row "forward_kl_clip" "forward-kl-clip" "Forward KL w/ Clip" "#6baed6"

    /// Reverse KL along y_o.
    [<CompiledName("ReverseKl")>]
    let reverseKl = row "reverse_kl" "reverse-kl" "Reverse KL" "#ff7f0e"

    /// Reverse KL along y_o restricted to the student's top-K.
    [<CompiledName("ReverseKlTopK")>]
    let reverseKlTopK = row "reverse_kl_topk" "reverse-kl-topk" "Reverse KL w/ Top-K" "#e6a157"

    /// TRD: forward KL along the refined trajectory y_r.
    [<CompiledName("Trd")>]
    let trd = row "trd" "trd" "TRD" "#d62728"

    let private shapedColours =
        [| "#2ca02c"; "#98df8a"; "#8c564b"; "#c49c94"; "#e377c2"; "#f7b6d2"; "#bcbd22"; "#dbdb8d"; "#17becf"; "#9edae5"
           "#393b79"; "#637939"; "#843c39" |]

    /// The shaped methods beyond the paper (ShapedMethods.all, docs/methods.md) at their defaults, in that order:
    /// `"recipe"` and `trd study --methods` take their names too.
    [<CompiledName("Shaped")>]
    let shaped =
        ShapedMethods.all
        |> Array.mapi (fun i m -> row (m.ConfigName.Replace('-', '_')) m.ConfigName m.Label shapedColours[i % shapedColours.Length])

    /// Every row, in the report's order: the reference models, the paper's baselines, the shaped methods, TRD last (the
    /// paper's tables put the proposed method last).
    [<CompiledName("Rows")>]
    let rows = Array.concat [ [| baseModel; teacher; forwardKl; forwardKlClip; reverseKl; reverseKlTopK |]; shaped; [| trd |] ]

    /// The paper's five methods, in its order (the study's default).
    [<CompiledName("All")>]
    let all = [| forwardKl; forwardKlClip; reverseKl; reverseKlTopK; trd |]

    /// Whether a row is one of the paper's five methods (the claims' baselines are these, whatever else ran).
    [<CompiledName("IsPaperMethod")>]
    let isPaperMethod (r: ComparisonRow) = Array.contains r all

    let private named = Array.append all shaped

    /// The colour of a row that is not in the catalogue (an ablation's own recipe).
    [<CompiledName("OtherColour")>]
    let otherColour = "#9467bd"

    let private tryRow (id: string) = Array.tryFind (fun r -> r.Id = id) rows

    /// A row's position in the report's order; rows not in the catalogue come after it.
    [<CompiledName("Rank")>]
    let rank (id: string) = Array.tryFindIndex (fun r -> r.Id = id) rows |> Option.defaultValue rows.Length

    /// The paper's name of a row id, or the id itself for a row not in the catalogue.
    [<CompiledName("Label")>]
    let label (id: string) = tryRow id |> Option.map (fun r -> r.Label) |> Option.defaultValue id

    /// The chart colour of a row id (otherColour for a row not in the catalogue).
    [<CompiledName("Colour")>]
    let colour (id: string) = tryRow id |> Option.map (fun r -> r.Colour) |> Option.defaultValue otherColour

    /// The method a config name denotes (case ignored): "forward-kl" → forwardKl; null for anything else,
    /// including the reference rows, which have no config name.
    [<CompiledName("TryOfConfigName")>]
    let tryOfConfigName (name: string) : ComparisonRow =
        let key = if obj.ReferenceEquals(name, null) then "" else name.Trim().ToLowerInvariant()
        named |> Array.tryFind (fun r -> r.ConfigName = key) |> Option.defaultValue Unchecked.defaultof<ComparisonRow>

    /// The recipe of a method under a setting (the clip constant depends on it). Raises for the reference rows.
    [<CompiledName("RecipeOf")>]
    let recipeOf (method: ComparisonRow) (setting: Setting) : Recipe =
        if method = forwardKl then Recipes.forwardKl
        elif method = forwardKlClip then Recipes.forwardKlClip setting
        elif method = reverseKl then Recipes.reverseKl
        elif method = reverseKlTopK then Recipes.reverseKlTopK
        elif method = trd then Recipes.trd
        else
            match ShapedMethods.tryFind method.ConfigName with
            | m when not (obj.ReferenceEquals(m, null)) && method.IsMethod -> ShapedMethods.defaultOf m
            | _ -> invalidArg "method" $"'{method.Id}' is not a distillation method; it has no recipe"

    /// The catalogued method whose recipe under the setting equals the given one; null if none does.
    [<CompiledName("TryOfRecipe")>]
    let tryOfRecipe (recipe: Recipe) (setting: Setting) : ComparisonRow =
        named |> Array.tryFind (fun m -> recipeOf m setting = recipe) |> Option.defaultValue Unchecked.defaultof<ComparisonRow>

    /// results.json's id of a config name: "forward-kl" → "forward_kl" (any name, catalogued or not).
    [<CompiledName("IdOf")>]
    let idOf (configName: string) = configName.Replace('-', '_')
