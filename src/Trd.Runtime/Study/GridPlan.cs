using System.Text.Json;
using System.Text.Json.Nodes;
using Trd.Core;
using Trd.Runtime.Gym;

namespace Trd.Runtime.Study;

/// <summary>One axis of a grid: a gym knob and the values it takes ("catch=0,0.4,0.8").</summary>
public sealed record GridAxis(
    [property: System.Text.Json.Serialization.JsonPropertyName("knob")] string Knob,
    [property: System.Text.Json.Serialization.JsonPropertyName("values")] string[] Values)
{
    /// <summary>
    /// Parses "knob=v1,v2,…"; raises naming the argument when the knob is unknown, a value is not one the knob takes,
    /// or a value repeats.
    /// </summary>
    public static GridAxis Parse(string argument)
    {
        var eq = argument.IndexOf('=');
        if (eq <= 0 || eq == argument.Length - 1)
            throw new ArgumentException($"--grid {argument}: expected KNOB=V1,V2,… (knobs: {string.Join(", ", GymVariant.Knobs)})");
        var knob = argument[..eq];
        if (!GymVariant.Knobs.Contains(knob))
            throw new ArgumentException($"--grid {argument}: unknown knob '{knob}' (expected {string.Join(", ", GymVariant.Knobs)})");
        var values = argument[(eq + 1)..].Split(',');
        foreach (var v in values) GymVariant.Default.With(knob, v);   // each value checked, the error names it
        var canonical = values.Select(v => GymVariant.Default.With(knob, v).ValueOf(knob)!).ToArray();
        if (canonical.Distinct().Count() != canonical.Length)
            throw new ArgumentException($"--grid {argument}: a value of '{knob}' repeats");
        return new GridAxis(knob, canonical);
    }
}

/// <summary>
/// A grid of gym variants (<c>trd study --grid</c>): the cartesian product of its axes, each cell a full study of
/// the base plan on that variant. A knob left out keeps its default.
/// </summary>
public sealed record GridPlan(StudyOptions Base, GridAxis[] Axes)
{
    /// <summary>The grid plan's file in the grid directory.</summary>
    public const string FileName = "grid.json";
    /// <summary>The cells' parent folder.</summary>
    public const string CellsFolder = "cells";

    /// <summary>A plan from the <c>--grid</c> arguments; raises naming a bad or repeated knob.</summary>
    public static GridPlan Parse(StudyOptions options, IEnumerable<string> arguments)
    {
        var axes = arguments.Select(GridAxis.Parse).ToArray();
        if (axes.Length == 0) throw new ArgumentException("--grid: at least one KNOB=V1,V2,…");
        var repeated = axes.GroupBy(a => a.Knob).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"--grid: knob '{repeated.Key}' given twice");
        return new GridPlan(options, axes).Validated();
    }

    /// <summary>The cells, first axis slowest, each the base variant with the cell's knobs turned.</summary>
    public GymVariant[] Cells =>
        Axes.Aggregate(new[] { Base.Variant }, (cells, axis) => cells.SelectMany(c => axis.Values.Select(v => c.With(axis.Knob, v))).ToArray());

    /// <summary>
    /// The settings a cell runs: the base plan's, except that OPSD (which never uses the OPD teacher) runs only in the
    /// first cell of each student — the cells that differ from it only in the teacher's catch rate read it from there.
    /// </summary>
    public Setting[] SettingsOf(GymVariant cell) =>
        Base.Settings.Where(s => s != Setting.Opsd || OpsdSource(cell) == cell).ToArray();

    /// <summary>The cell whose OPSD runs stand for this cell's: the first cell with the same student.</summary>
    public GymVariant OpsdSource(GymVariant cell) => Cells.First(c => c.StudentPart == cell.StudentPart);

    /// <summary>A cell's study directory.</summary>
    public string CellDirectory(GymVariant cell) => Path.Combine(Base.Directory, CellsFolder, cell.Folder);

    /// <summary>The study options of one cell.</summary>
    public StudyOptions OptionsOf(GymVariant cell) =>
        Base with { Directory = CellDirectory(cell), Variant = cell, Settings = SettingsOf(cell), Command = Base.Command };

    /// <summary>The plan as grid.json records it: the axes and the base plan (a directory holding another is refused).</summary>
    public JsonObject ToJson()
    {
        var node = new JsonObject
        {
            ["axes"] = new JsonArray(Axes.Select(a => (JsonNode)new JsonObject
            {
                ["knob"] = a.Knob, ["values"] = new JsonArray(a.Values.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray()),
            }).ToArray()),
            ["plan"] = (Base with { Variant = GymVariant.Default }).Plan(),
        };
        if (!Base.Variant.IsDefault) node["gym"] = Base.Variant.ToJson();
        return node;
    }

    /// <summary>Raises naming the problem: too many cells, or a cell whose study options are invalid.</summary>
    public GridPlan Validated()
    {
        var cells = Cells;
        if (cells.Length > 64) throw new ArgumentException($"--grid: {cells.Length} cells; at most 64");
        foreach (var cell in cells)
        {
            var options = OptionsOf(cell);
            options.Validated();
            foreach (var recipe in new[] { options.ModelsOf(1).Student, options.ModelsOf(1).Teacher }) recipe.Validated();
            // the problem splits must hold the plan's problems at the cell's level
            var capacity = Trd.Core.Gym.SplitCapacity(cell.Level);
            if (Math.Max(Base.TrainProblems, Base.HeldoutProblems) > capacity)
                throw new ArgumentException($"--grid cell {cell}: at most about {capacity} distinct problems fit a split at {cell.Level.MinTerms}–{cell.Level.MaxTerms} terms");
        }
        return this;
    }

    /// <summary>Writes grid.json, or checks the one there is this plan's (else raises naming the file).</summary>
    public void Record()
    {
        Directory.CreateDirectory(Base.Directory);
        var path = Path.Combine(Base.Directory, FileName);
        var plan = ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (File.Exists(path) && File.ReadAllText(path) != plan)
            throw new ArgumentException($"{path}: this directory holds a grid with another plan; choose another --out or delete it");
        if (!File.Exists(path)) Checkpoints.AtomicFile.WriteText(path, plan);
    }
}
