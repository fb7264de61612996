module Trd.Tests.GradientFormTests
