from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from annotation.models import Annotation, Assignment, BudgetGroup, Item, Membership, Project, Round


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class BudgetGroupFormSet(BaseInlineFormSet):
    """Validates the allocations as a whole, like budget_groups_set does for the API."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        project_budget = self.instance.budget or Decimal(0)
        total = Decimal(0)
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                if (
                    data.get("DELETE")
                    and form.instance.pk
                    and (form.instance.spent or form.instance.reserved)
                ):
                    raise ValidationError(f"Group {form.instance.name!r} has spent budget.")
                continue
            share = data.get("share")
            if share is not None:
                if share > 1:
                    raise ValidationError(f"Group {data['name']!r}: a share is at most 1.")
                data["budget"] = form.instance.budget = (project_budget * share).quantize(
                    Decimal("0.01")
                )
            budget = data.get("budget") or Decimal(0)
            if form.instance.pk and budget < form.instance.spent + form.instance.reserved:
                raise ValidationError(
                    f"Group {data['name']!r} has {form.instance.spent} spent and "
                    f"{form.instance.reserved} reserved: its budget cannot be lower."
                )
            total += budget
        if total > project_budget:
            raise ValidationError(
                f"The groups' allocations ({total}) exceed the project budget ({project_budget})."
            )


class BudgetGroupInline(admin.TabularInline):
    model = BudgetGroup
    formset = BudgetGroupFormSet
    extra = 0
    fields = ["name", "share", "budget", "spent", "reserved"]
    readonly_fields = ["spent", "reserved"]


MAX_LABELS = 50


class ProjectAdminForm(forms.ModelForm):
    """The rules the API's ProjectSerializer keeps: labels are 1 to 50 distinct, non-empty
    strings, and the out-of-scope label is one of them."""

    class Meta:
        model = Project
        fields = ["labels", "out_of_scope_label"]  # ProjectAdmin adds the rest

    def clean_labels(self):
        labels = self.cleaned_data.get("labels")
        if not isinstance(labels, list) or not labels:
            raise ValidationError('Give the labels as a JSON list of names: ["cat", "dog"].')
        if not all(isinstance(label, str) and label.strip() for label in labels):
            raise ValidationError("Every label must be a non-empty string.")
        if any(len(label) > 200 for label in labels):
            raise ValidationError("A label is at most 200 characters.")
        if len(labels) > MAX_LABELS:
            raise ValidationError(f"At most {MAX_LABELS} labels.")
        if len(set(labels)) != len(labels):
            raise ValidationError("Labels must be distinct.")
        return labels

    def clean(self):
        data = super().clean()
        oos, labels = data.get("out_of_scope_label"), data.get("labels")
        if oos and isinstance(labels, list) and oos not in labels:
            self.add_error("out_of_scope_label", "It must be one of the labels.")
        return data


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = [
        "name",
        "kind",
        "budget",
        "spent",
        "reserved",
        "acquisition",
        "batch_size",
        "round",
        "paused",
    ]
    readonly_fields = ["kind", "spent", "reserved", "round", "created_at"]
    inlines = [BudgetGroupInline, MembershipInline]
    fieldsets = [
        (
            None,
            {"fields": ["name", "labels", "kind", "out_of_scope_label", "out_of_scope_threshold"]},
        ),
        (
            "Budget",
            {"fields": ["budget", "spent", "reserved", "cost_rule", "cost_value", "cost_floor"]},
        ),
        (
            "Active learning",
            {
                "fields": [
                    "acquisition",
                    "batch_size",
                    "ensemble_size",
                    "queue_low_water",
                    "text_featurizer",
                    "group_mode",
                    "group_floor",
                    "round",
                ]
            },
        ),
        ("Annotation", {"fields": ["paused", "lease_seconds", "created_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.items.filter(vector__isnull=False).exists():
            fields.append("text_featurizer")  # the vectors made with it must stay comparable
        return fields

    def save_model(self, request, obj, form, change):
        # The budget goes through the service: refused below spent, and lowering it
        # unqueues what no longer fits.
        from annotation.services.budgets import budget_set

        if change and "budget" in form.changed_data:
            new_budget = obj.budget
            obj.budget = type(obj).objects.get(pk=obj.pk).budget
            super().save_model(request, obj, form, change)
            budget_set(project=obj, budget=new_budget)
            obj.refresh_from_db()
        else:
            super().save_model(request, obj, form, change)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "external_id",
        "status",
        "cost",
        "group",
        "queued_round",
        "score",
    ]
    list_filter = ["project", "status"]
    search_fields = ["external_id", "text"]
    readonly_fields = [
        "status",
        "queued_round",
        "queue_rank",
        "score",
        "acquisition",
        "queued_at",
        "leased_to",
        "lease_expires_at",
    ]
    # A queued item's cost is reserved in its project's and group's ledgers, a labeled
    # one's spent there: changing them would break the ledgers.
    ledger_fields = ["project", "cost", "group"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != Item.Status.UNLABELED:
            fields += self.ledger_fields
        return fields


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["item", "label", "annotator", "cost", "created_at"]
    list_filter = ["item__project"]
    readonly_fields = ["item", "annotator", "cost"]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "number",
        "status",
        "strategy",
        "labeled_count",
        "queued_count",
        "accuracy",
        "seconds",
    ]
    list_filter = ["project", "status"]
    exclude = ["model"]


admin.site.register(Assignment)
