from django.db import migrations, models

CHOICES = [
    ("minilm", "sentence embeddings (all-MiniLM-L6-v2)"),
    ("hashed", "hashed word and character n-grams"),
]
HELP = "How texts become feature vectors; fixed once items are featurized."


class Migration(migrations.Migration):
    """Existing projects keep the hashed n-grams their vectors were made with; new
    projects get sentence embeddings."""

    dependencies = [("annotation", "0002_lease_indexes")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="text_featurizer",
            field=models.CharField(choices=CHOICES, default="hashed", help_text=HELP, max_length=10),
        ),
        migrations.AlterField(
            model_name="project",
            name="text_featurizer",
            field=models.CharField(choices=CHOICES, default="minilm", help_text=HELP, max_length=10),
        ),
    ]
