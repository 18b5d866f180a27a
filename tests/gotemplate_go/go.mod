module corral.test/gotemplate

go 1.19
