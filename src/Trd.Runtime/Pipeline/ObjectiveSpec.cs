using System.Globalization;
using Trd.Core;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// A distillation objective written out field by field: the config's <c>"objective"</c> object. Every field left out
/// keeps the value of the recipe named by <c>"recipe"</c>, so <c>{"recipe": "forward-kl-clip", "objective": {"clip_c":
/// 0.3}}</c> is Forward KL w/ Clip at c = 0.3, and a script can run any composition of Trd.Core's primitives
/// (<see cref="From"/> writes a <see cref="Recipe"/> out whole). Values are the config's words, not F# case names.
/// </summary>
public sealed record ObjectiveSpec
{
    /// <summary>The recipe's display name (tables, logs).</summary>
    public string? Name { get; init; }
    /// <summary>"forward", "reverse" or "jsd" (generalised JSD, with <see cref="JsdBeta"/>).</summary>
    public string? Direction { get; init; }
    /// <summary>β of the generalised JSD, in [0, 1].</summary>
    public double? JsdBeta { get; init; }
    /// <summary>"full" (the whole vocabulary), "top-k" (the teacher's top-K, renormalised) or "top-k-tail" (top-K plus one tail bucket).</summary>
    public string? Support { get; init; }
    /// <summary>K of a top-K support.</summary>
    public int? TopK { get; init; }
    /// <summary>"exact", "k1", "k2" or "k3" (the sampled reverse-KL estimators).</summary>
    public string? Estimator { get; init; }
    /// <summary>"none", "per-position" or "per-entry".</summary>
    public string? Clip { get; init; }
    /// <summary>The clip constant c.</summary>
    public double? ClipC { get; init; }
    /// <summary>T in p ∝ exp(ℓ / T), on both sides.</summary>
    public double? Temperature { get; init; }
    /// <summary>"y_o" (the student's rollout) or "y_r" (the refined trajectory).</summary>
    public string? Trajectory { get; init; }
    /// <summary>"vanilla" or "refine" (the teacher also sees y_o; needs trajectory y_r).</summary>
    public string? TeacherPrompt { get; init; }

    /// <summary>
    /// A shaped method by name (Trd.Core.ShapedMethods: "topd", "topd-suppress", "sg-opd", "ta-opd", "tropd-mask",
    /// "tropd-clip", "tropd-switch", "fire-opd", "gndpo", "kat", "esr", "opd-plus", "tinker"): it replaces the named
    /// recipe, takes the parameter keys below that it has, and the fields above still apply on top of it.
    /// </summary>
    public string? Method { get; init; }
    /// <summary>w: TOPD's and KAT's window.</summary>
    public double? Window { get; init; }
    /// <summary>θ or τ: the method's threshold (divergence in nats, trust or teachability).</summary>
    public double? Threshold { get; init; }
    /// <summary>TOPD's spreading decay.</summary>
    public double? Decay { get; init; }
    /// <summary>SG-OPD's gate strength λ.</summary>
    public double? Lambda { get; init; }
    /// <summary>TA-OPD's k (the student's candidates).</summary>
    public double? TeachabilityK { get; init; }
    /// <summary>TrOPD (switch)'s K of the outliers' top-K forward KL.</summary>
    public double? SwitchTopK { get; init; }
    /// <summary>FiRe-OPD's filtered fraction q.</summary>
    public double? FilterFraction { get; init; }
    /// <summary>FiRe-OPD's teacher-confidence exponent α.</summary>
    public double? Alpha { get; init; }
    /// <summary>FiRe-OPD's student-entropy exponent β.</summary>
    public double? Beta { get; init; }
    /// <summary>ESR's N.</summary>
    public double? FirstTokens { get; init; }
    /// <summary>The policy-gradient reward clamp (0: none).</summary>
    public double? RewardClip { get; init; }
    /// <summary>The policy-gradient discount γ.</summary>
    public double? Gamma { get; init; }
    /// <summary>PPO's ε on the importance ratio (0: none).</summary>
    public double? RatioClip { get; init; }
    /// <summary>OPD+: the corrected form (true) or the biased stop-gradient surrogate (false).</summary>
    public bool? Corrected { get; init; }

    /// <summary>The method parameters given, by config key.</summary>
    Dictionary<string, double> MethodParameters()
    {
        var given = new Dictionary<string, double>();
        void Add(string key, double? value) { if (value is { } v) given[key] = v; }
        Add("window", Window); Add("threshold", Threshold); Add("decay", Decay); Add("lambda", Lambda);
        Add("teachability_k", TeachabilityK); Add("switch_top_k", SwitchTopK); Add("filter_fraction", FilterFraction);
        Add("alpha", Alpha); Add("beta", Beta); Add("first_tokens", FirstTokens); Add("reward_clip", RewardClip);
        Add("gamma", Gamma); Add("ratio_clip", RatioClip);
        if (Corrected is { } c) given["corrected"] = c ? 1.0 : 0.0;
        return given;
    }

    /// <summary>
    /// <paramref name="named"/> with every given field replaced. Throws a <see cref="ConfigException"/> naming each
    /// field whose value is unknown or that does not apply (jsd_beta without direction "jsd", top_k without a top-K
    /// support, clip_c without a clip).
    /// </summary>
    public Recipe Apply(Recipe named)
    {
        var problems = new List<string>();
        var parameters = MethodParameters();
        // The method whose parameters apply: objective.method (it replaces the named recipe), or the shaped method the
        // named recipe already is ("recipe": "topd" with "objective": {"window": 8}: only its shaping is rebuilt).
        ShapedMethod? method = null;
        IReadOnlyDictionary<string, double> given = parameters;
        var replaces = Method is not null;
        if (Method is not null)
        {
            method = ShapedMethods.TryFind(Method);
            if (method is null)
                problems.Add($"objective.method: unknown value '{Method}' (expected one of {string.Join(", ", ShapedMethods.All.Select(m => m.ConfigName))})");
        }
        else if (parameters.Count > 0 && named.IsShaped && ShapedMethods.TryRecognise(named) is { } recognised)
        {
            method = recognised.Method;
            var merged = new Dictionary<string, double>(recognised.Parameters);
            foreach (var (key, value) in parameters) merged[key] = value;
            given = merged;
        }
        else
            foreach (var key in parameters.Keys)
                problems.Add($"objective.{key}: applies only with objective.method (a shaped method that has it)");
        if (method is not null)
        {
            try
            {
                var built = method.Create(given);
                named = replaces ? built
                    : named.WithWeighting(built.Weighting).WithSwitch(built.Switch).WithFilter(built.Filter)
                        .WithStepNormalisation(built.StepNormalisation).WithGradient(built.Gradient);
            }
            catch (ArgumentException e)
            {
                var message = e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "") : e.Message;
                var key = e.ParamName is { } p && (parameters.ContainsKey(p) || method.Parameters.Any(q => q.Key == p)) ? $"objective.{p}" : "objective";
                problems.Add($"{key}: {message}");
            }
        }
        var r = named;
        if (Name is not null) r = r.WithName(Name);

        if (Direction is not null)
        {
            switch (Direction.ToLowerInvariant())
            {
                case "forward": r = r.WithDirection(Trd.Core.Direction.Forward); break;
                case "reverse": r = r.WithDirection(Trd.Core.Direction.Reverse); break;
                case "jsd":
                    var beta = JsdBeta ?? (named.Direction is Trd.Core.Direction.Jsd j ? j.Beta : double.NaN);
                    if (double.IsNaN(beta)) problems.Add("objective.direction: 'jsd' needs objective.jsd_beta");
                    else r = r.WithDirection(Trd.Core.Direction.NewJsd(beta));
                    break;
                default: problems.Add($"objective.direction: unknown value '{Direction}' (expected 'forward', 'reverse' or 'jsd')"); break;
            }
        }
        else if (JsdBeta is { } beta)
        {
            if (named.Direction is Trd.Core.Direction.Jsd) r = r.WithDirection(Trd.Core.Direction.NewJsd(beta));
            else problems.Add($"objective.jsd_beta: applies only with direction 'jsd' (the recipe's direction is {named.Direction})");
        }

        if (Support is not null)
        {
            int? k = TopK ?? (named.Support is Trd.Core.Support.TeacherTopK t ? t.K : named.Support is Trd.Core.Support.TeacherTopKWithTail tt ? tt.K : null);
            switch (Support.ToLowerInvariant())
            {
                case "full": r = r.WithSupport(Trd.Core.Support.FullVocabulary); if (TopK is not null) problems.Add("objective.top_k: applies only with support 'top-k' or 'top-k-tail'"); break;
                case "top-k" when k is null:
                case "top-k-tail" when k is null: problems.Add($"objective.support: '{Support}' needs objective.top_k"); break;
                case "top-k": r = r.WithSupport(Trd.Core.Support.NewTeacherTopK(k!.Value)); break;
                case "top-k-tail": r = r.WithSupport(Trd.Core.Support.NewTeacherTopKWithTail(k!.Value)); break;
                default: problems.Add($"objective.support: unknown value '{Support}' (expected 'full', 'top-k' or 'top-k-tail')"); break;
            }
        }
        else if (TopK is { } k)
        {
            if (named.Support is Trd.Core.Support.TeacherTopK) r = r.WithSupport(Trd.Core.Support.NewTeacherTopK(k));
            else if (named.Support is Trd.Core.Support.TeacherTopKWithTail) r = r.WithSupport(Trd.Core.Support.NewTeacherTopKWithTail(k));
            else problems.Add("objective.top_k: applies only with support 'top-k' or 'top-k-tail' (the recipe uses the full vocabulary)");
        }

        if (Estimator is not null)
        {
            switch (Estimator.ToLowerInvariant())
            {
                case "exact": r = r.WithEstimator(Trd.Core.Estimator.Exact); break;
                case "k1": r = r.WithEstimator(Trd.Core.Estimator.K1); break;
                case "k2": r = r.WithEstimator(Trd.Core.Estimator.K2); break;
                case "k3": r = r.WithEstimator(Trd.Core.Estimator.K3); break;
                default: problems.Add($"objective.estimator: unknown value '{Estimator}' (expected 'exact', 'k1', 'k2' or 'k3')"); break;
            }
        }

        if (Clip is not null)
        {
            var c = ClipC ?? (named.Clip is Trd.Core.Clip.PerPosition p ? p.C : named.Clip is Trd.Core.Clip.PerVocabEntry e ? e.C : double.NaN);
            switch (Clip.ToLowerInvariant())
            {
                case "none": r = r.WithClip(Trd.Core.Clip.NoClip); if (ClipC is not null) problems.Add("objective.clip_c: applies only with clip 'per-position' or 'per-entry'"); break;
                case "per-position" or "per-entry" when double.IsNaN(c): problems.Add($"objective.clip: '{Clip}' needs objective.clip_c"); break;
                case "per-position": r = r.WithClip(Trd.Core.Clip.NewPerPosition(c)); break;
                case "per-entry": r = r.WithClip(Trd.Core.Clip.NewPerVocabEntry(c)); break;
                default: problems.Add($"objective.clip: unknown value '{Clip}' (expected 'none', 'per-position' or 'per-entry')"); break;
            }
        }
        else if (ClipC is { } c)
        {
            if (named.Clip is Trd.Core.Clip.PerPosition) r = r.WithClip(Trd.Core.Clip.NewPerPosition(c));
            else if (named.Clip is Trd.Core.Clip.PerVocabEntry) r = r.WithClip(Trd.Core.Clip.NewPerVocabEntry(c));
            else problems.Add("objective.clip_c: applies only with clip 'per-position' or 'per-entry' (the recipe does not clip)");
        }

        if (Temperature is { } temperature) r = r.WithTemperature(temperature);

        if (Trajectory is not null)
        {
            switch (Trajectory.ToLowerInvariant())
            {
                case "y_o" or "rollout": r = r.WithTrajectory(Trd.Core.Trajectory.Rollout); break;
                case "y_r" or "refined": r = r.WithTrajectory(Trd.Core.Trajectory.Refined); break;
                default: problems.Add($"objective.trajectory: unknown value '{Trajectory}' (expected 'y_o' or 'y_r')"); break;
            }
        }

        if (TeacherPrompt is not null)
        {
            switch (TeacherPrompt.ToLowerInvariant())
            {
                case "vanilla": r = r.WithTeacherPrompt(Trd.Core.TeacherPrompt.Vanilla); break;
                case "refine": r = r.WithTeacherPrompt(Trd.Core.TeacherPrompt.Refine); break;
                default: problems.Add($"objective.teacher_prompt: unknown value '{TeacherPrompt}' (expected 'vanilla' or 'refine')"); break;
            }
        }

        if (problems.Count > 0) throw new ConfigException(string.Join("; ", problems));
        return r;
    }

    /// <summary>
    /// Every field of <paramref name="recipe"/> written out: <c>From(r).Apply(anything) == r</c>. A shaped recipe is
    /// written as its method and parameters; one whose shaping is not a catalogued method cannot be written.
    /// </summary>
    public static ObjectiveSpec From(Recipe recipe)
    {
        var spec = Fields(recipe);
        if (!recipe.IsShaped) return spec;
        if (ShapedMethods.TryRecognise(recipe) is not { } found)
            throw new ConfigException($"recipe '{recipe.Name}' combines shaping primitives that are not one of the named methods ({recipe}); a config can only name a method (objective.method)");
        var (method, ps) = (found.Method, found.Parameters);
        double? P(string key) => ps.TryGetValue(key, out var v) ? v : null;
        return spec with
        {
            Method = method.ConfigName, Window = P("window"), Threshold = P("threshold"), Decay = P("decay"), Lambda = P("lambda"),
            TeachabilityK = P("teachability_k"), SwitchTopK = P("switch_top_k"), FilterFraction = P("filter_fraction"), Alpha = P("alpha"),
            Beta = P("beta"), FirstTokens = P("first_tokens"), RewardClip = P("reward_clip"), Gamma = P("gamma"), RatioClip = P("ratio_clip"),
            Corrected = P("corrected") is { } c ? c == 1.0 : null,
        };
    }

    static ObjectiveSpec Fields(Recipe recipe) => new()
    {
        Name = recipe.Name,
        Direction = recipe.Direction switch
        {
            Trd.Core.Direction.Jsd => "jsd",
            var d when d.IsForward => "forward",
            _ => "reverse",
        },
        JsdBeta = recipe.Direction is Trd.Core.Direction.Jsd j ? j.Beta : null,
        Support = recipe.Support switch
        {
            Trd.Core.Support.TeacherTopK => "top-k",
            Trd.Core.Support.TeacherTopKWithTail => "top-k-tail",
            _ => "full",
        },
        TopK = recipe.Support is Trd.Core.Support.TeacherTopK t ? t.K : recipe.Support is Trd.Core.Support.TeacherTopKWithTail tt ? tt.K : null,
        Estimator = recipe.Estimator.ToString().ToLowerInvariant(),
        Clip = recipe.Clip switch
        {
            Trd.Core.Clip.PerPosition => "per-position",
            Trd.Core.Clip.PerVocabEntry => "per-entry",
            _ => "none",
        },
        ClipC = recipe.Clip is Trd.Core.Clip.PerPosition p ? p.C : recipe.Clip is Trd.Core.Clip.PerVocabEntry e ? e.C : null,
        Temperature = recipe.Temperature,
        Trajectory = recipe.Trajectory.IsRefined ? "y_r" : "y_o",
        TeacherPrompt = recipe.TeacherPrompt.IsRefine ? "refine" : "vanilla",
    };

    /// <summary>A short stable text of the objective (fields in order, invariant numbers): for naming run directories.</summary>
    public string Canonical()
    {
        var fields = string.Join(";", new[]
        {
            Direction, JsdBeta?.ToString("R", CultureInfo.InvariantCulture), Support, TopK?.ToString(CultureInfo.InvariantCulture), Estimator,
            Clip, ClipC?.ToString("R", CultureInfo.InvariantCulture), Temperature?.ToString("R", CultureInfo.InvariantCulture), Trajectory, TeacherPrompt,
        }.Select(v => v ?? "-"));
        if (Method is null) return fields;   // the paper's recipes keep the text (and so the run directories) they always had
        var parameters = MethodParameters().OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{p.Key}={p.Value.ToString("R", CultureInfo.InvariantCulture)}");
        return $"{fields};method={Method.ToLowerInvariant()};{string.Join(";", parameters)}";
    }
}
