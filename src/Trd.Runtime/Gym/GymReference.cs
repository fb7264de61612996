using System.Reflection;
using System.Security.Cryptography;

namespace Trd.Runtime.Gym;

/// <summary>
/// The gym models shipped inside Trd.Runtime (docs/gym.md, "Reference models"): float32 kernels are chosen by CPU
/// features (AVX-512 or AVX2 in ATen, MKL's and oneDNN's dispatch), so the same recipe trained on two kinds of CPU
/// gives two different models, and a study's verdicts would rest on which machine trained them. The study's models
/// are therefore shipped as bytes — the same everywhere — and installed into the cache instead of trained when a
/// recipe's key matches one of them. <c>trd gym --retrain</c> trains them again from their recipes and says whether
/// this machine reproduces the shipped bytes.
/// </summary>
/// <remarks>
/// Each model is four files under <c>Gym/reference/&lt;name&gt;-&lt;key&gt;/</c> in the source tree (config.json,
/// model.safetensors, recipe.json, card.json), embedded as resources named
/// <c>gym-reference/&lt;name&gt;-&lt;key&gt;/&lt;file&gt;</c>; the tokenizer is the gym's own, written on install.
/// </remarks>
public static class GymReference
{
    const string Prefix = "gym-reference/";

    /// <summary>The files a shipped model carries (the tokenizer is written by <see cref="GymTokenizer"/>).</summary>
    public static readonly string[] Files = ["config.json", "model.safetensors", "recipe.json", "card.json"];

    static Assembly Assembly => typeof(GymReference).Assembly;

    /// <summary>The folder names (<c>&lt;name&gt;-&lt;key&gt;</c>) of the shipped models.</summary>
    public static IReadOnlyList<string> Shipped() => Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith("/model.safetensors", StringComparison.Ordinal))
        .Select(n => n[Prefix.Length..^"/model.safetensors".Length]).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Whether a model of this recipe is shipped.</summary>
    public static bool Has(GymModelRecipe recipe) => Assembly.GetManifestResourceInfo(ResourceName(recipe, "model.safetensors")) is not null;

    /// <summary>sha256 of the shipped model.safetensors of a recipe (lower-case hex), or null when none is shipped.</summary>
    public static string? ModelHash(GymModelRecipe recipe)
    {
        using var stream = Assembly.GetManifestResourceStream(ResourceName(recipe, "model.safetensors"));
        return stream is null ? null : Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Writes the shipped model of <paramref name="recipe"/> into <paramref name="directory"/> (a temporary directory the
    /// caller renames into place, <see cref="Checkpoints.AtomicFile.WriteDirectory"/>). False when none is shipped.
    /// </summary>
    public static bool TryWrite(GymModelRecipe recipe, string directory)
    {
        if (!Has(recipe)) return false;
        Directory.CreateDirectory(directory);
        GymTokenizer.Write(directory);
        foreach (var file in Files)
        {
            using var source = Assembly.GetManifestResourceStream(ResourceName(recipe, file))
                ?? throw new InvalidDataException($"the shipped gym model {recipe.Name}-{recipe.Key} lacks {file} (a broken build of Trd.Runtime)");
            using var target = File.Create(Path.Combine(directory, file));
            source.CopyTo(target);
        }
        return true;
    }

    static string ResourceName(GymModelRecipe recipe, string file) => $"{Prefix}{recipe.Name}-{recipe.Key}/{file}";
}
