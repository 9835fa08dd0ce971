from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduler", "0002_scheduler_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="bundleversion",
            name="dags",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
