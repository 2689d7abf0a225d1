from cms.cli.main import app

app()
