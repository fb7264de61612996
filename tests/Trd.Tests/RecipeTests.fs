module Trd.Tests.RecipeTests
