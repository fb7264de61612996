module Trd.Tests.Generators
